"""Many clients racing on the same blob and the same tag: no 5xx, a consistent result."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.durability.conftest import Store
from tests.durability.server import (
    ServerProcess,
    finish_upload,
    image_manifest,
    patch_chunk,
    push_monolithic,
    put_manifest,
    run_fsck,
    sha256,
    start_upload,
)

THREADS = 10
ROUNDS = 2

pytestmark = pytest.mark.slow


def _race(
    server: ServerProcess, jobs: list[Callable[[httpx.Client], httpx.Response]]
) -> list[httpx.Response]:
    """Run every job in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with server.client() as client:
            client.get("/v2/")  # connect before the barrier
            barrier.wait(timeout=30)
            return job(client)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _statuses(responses: list[httpx.Response]) -> list[tuple[int, str]]:
    return [(r.status_code, r.text[:200]) for r in responses if r.status_code != 201]


def _chunked(repo: str, data: bytes) -> Callable[[httpx.Client], httpx.Response]:
    def job(client: httpx.Client) -> httpx.Response:
        location = start_upload(client, repo)
        third = len(data) // 3
        for start, end in ((0, third), (third, 2 * third)):
            response = patch_chunk(client, location, data[start:end], start)
            if response.status_code != 202:
                return response
            location = response.headers["location"]
        return finish_upload(client, location, sha256(data), data[2 * third :])

    return job


def _monolithic(repo: str, data: bytes) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: push_monolithic(client, repo, data)


def _put(repo: str, reference: str, body: bytes) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: put_manifest(client, repo, reference, body)


def _assert_blob(server: ServerProcess, repo: str, data: bytes) -> None:
    with server.client() as client:
        response = client.get(f"/v2/{repo}/blobs/{sha256(data)}")
    assert response.status_code == 200
    assert response.content == data


@pytest.fixture(scope="module")
def server(shared_store: Store) -> ServerProcess:
    return shared_store.server(workers=2).start()


@pytest.mark.parametrize("mode", ["monolithic", "chunked", "mixed"])
def test_same_blob_pushed_concurrently(server: ServerProcess, mode: str) -> None:
    for round_no in range(ROUNDS):
        repo = f"race/blob-{mode}-{round_no}"  # a new repository: its creation races too
        data = os.urandom(100_000)
        jobs = [
            _monolithic(repo, data)
            if mode == "monolithic" or (mode == "mixed" and n % 2)
            else _chunked(repo, data)
            for n in range(THREADS)
        ]
        responses = _race(server, jobs)
        assert _statuses(responses) == []
        assert {r.headers["docker-content-digest"] for r in responses} == {sha256(data)}
        _assert_blob(server, repo, data)


def test_same_blob_pushed_concurrently_to_many_repositories(server: ServerProcess) -> None:
    data = os.urandom(100_000)
    jobs = [(_chunked if n % 2 else _monolithic)(f"race/many-{n}", data) for n in range(THREADS)]
    assert _statuses(_race(server, jobs)) == []
    for n in range(THREADS):
        _assert_blob(server, f"race/many-{n}", data)


def test_same_tag_pushed_concurrently_to_different_manifests(server: ServerProcess) -> None:
    for round_no in range(ROUNDS):
        repo = f"race/tag-{round_no}"
        config, layer = b'{"race": true}', os.urandom(10_000)
        with server.client() as client:
            for blob in (config, layer):
                assert push_monolithic(client, repo, blob).status_code == 201
        manifests = [image_manifest(config, [layer], annotation=f"m{n}") for n in range(THREADS)]
        responses = _race(server, [_put(repo, "contested", m) for m in manifests])
        assert _statuses(responses) == []
        with server.client() as client:
            final = client.get(f"/v2/{repo}/manifests/contested")
            assert final.status_code == 200
            assert final.content in manifests
            assert final.headers["docker-content-digest"] == sha256(final.content)
            for manifest in manifests:  # every push stays reachable by digest
                by_digest = client.get(f"/v2/{repo}/manifests/{sha256(manifest)}")
                assert by_digest.status_code == 200
                assert by_digest.content == manifest
            assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["contested"]


def test_same_manifest_pushed_concurrently_by_tag_and_digest(server: ServerProcess) -> None:
    for round_no in range(ROUNDS):
        repo = f"race/manifest-{round_no}"
        config, layer = b"{}", os.urandom(5_000)
        with server.client() as client:
            for blob in (config, layer):
                assert push_monolithic(client, repo, blob).status_code == 201
        manifest = image_manifest(config, [layer])
        references = [sha256(manifest) if n % 3 == 0 else f"t{n % 2}" for n in range(THREADS)]
        responses = _race(server, [_put(repo, ref, manifest) for ref in references])
        assert _statuses(responses) == []
        assert {r.headers["docker-content-digest"] for r in responses} == {sha256(manifest)}
        with server.client() as client:
            for reference in {*references}:
                response = client.get(f"/v2/{repo}/manifests/{reference}")
                assert response.status_code == 200
                assert response.content == manifest


def test_zz_store_is_consistent_after_the_races(server: ServerProcess, shared_store: Store) -> None:
    """Runs last in this module: no 500 was logged, and fsck finds the store clean."""
    assert server.internal_errors() == []
    server.stop()
    result = run_fsck(shared_store.data_dir, shared_store.database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fsck: clean" in result.stdout
