"""containerd's ``ctr``, through a private containerd, against the registry under test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from .conftest import Target
from .images import Image, ImageIndex, assert_registry_has_exact_image
from .tooling import (
    Ctr,
    ManagedProcess,
    Skopeo,
    require_binary,
    short_tmpdir,
    socket_ready,
    wait_until,
)

pytestmark = pytest.mark.clients

PLAIN_HTTP = "--plain-http"
SNAPSHOTTER = ("--snapshotter", "native")  # no overlay mounts to clean up


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctr]:
    cli = require_binary("ctr")
    containerd = require_binary("containerd")
    data = tmp_path_factory.mktemp("containerd")
    run_dir = short_tmpdir("psc")
    sock = run_dir / "c.sock"
    config = data / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{data}/root"\n'
        f'state = "{run_dir}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        "[grpc]\n"
        f'  address = "{sock}"\n'
        "[ttrpc]\n"
        f'  address = "{sock}.ttrpc"\n'
        "[debug]\n"
        '  address = ""\n'
        '[plugins."io.containerd.internal.v1.opt"]\n'
        f'  path = "{data}/opt"\n'
    )
    process = ManagedProcess(
        "containerd", [containerd, "--config", config], data / "containerd.log"
    ).start()
    client = Ctr(cli, sock)
    try:
        wait_until(
            lambda: socket_ready(sock) and client("version", check=False).returncode == 0,
            timeout=30,
            what="containerd",
            interval=0.2,
            alive=process.exit_problem,
        )
        yield client
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"{exc}\n{process.log_tail()}", pytrace=False)
    finally:
        process.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


def content(ctr: Ctr, digest: str) -> bytes:
    return ctr("content", "get", digest).stdout_bytes


def image_target(ctr: Ctr, ref: str) -> str:
    """The digest an image name points at (``ctr images ls`` DIGEST column)."""
    for line in ctr("images", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == ref:
            return fields[2]
    raise AssertionError(f"{ref} not in ctr images ls")


def test_pull_push_single_image(ctr: Ctr, skopeo: Skopeo, target: Target, image: Image) -> None:
    registry_http, repo = target.http, target.repo
    skopeo.push_layout(target.layout({"v1": image}), "v1", target.ref("v1"))
    source = target.ref("v1")

    ctr("images", "pull", PLAIN_HTTP, *SNAPSHOTTER, source)
    assert image_target(ctr, source) == image.digest
    assert content(ctr, image.digest) == image.manifest
    for digest, data in image.blobs().items():
        assert content(ctr, digest) == data
    ctr("images", "check", f"name=={source}")

    copy_repo = f"{repo}/copy"
    dest = target.ref("v1", repo=copy_repo)
    ctr("images", "push", PLAIN_HTTP, dest, source)
    assert_registry_has_exact_image(registry_http, copy_repo, "v1", image)

    # Pull the pushed copy by digest after forgetting the local images.
    ctr("images", "rm", source)
    ctr("content", "rm", image.digest)
    by_digest = target.ref(image.digest, repo=copy_repo)
    ctr("images", "pull", PLAIN_HTTP, *SNAPSHOTTER, by_digest)
    assert content(ctr, image.digest) == image.manifest


def test_pull_push_multi_arch_index(
    ctr: Ctr, skopeo: Skopeo, target: Target, image_index: ImageIndex
) -> None:
    registry_http, repo = target.http, target.repo
    layout = target.layout({"multi": image_index})
    skopeo.push_layout(layout, "multi", target.ref("multi"), "--all")
    source = target.ref("multi")

    ctr("images", "pull", PLAIN_HTTP, "--all-platforms", source)
    assert image_target(ctr, source) == image_index.digest
    assert content(ctr, image_index.digest) == image_index.index
    for digest, data in image_index.blobs().items():
        assert content(ctr, digest) == data

    copy_repo = f"{repo}/copy"
    ctr("images", "push", PLAIN_HTTP, target.ref("multi", repo=copy_repo), source)
    fetched = registry_http.manifest(copy_repo, "multi")
    assert fetched.body == image_index.index
    for child in image_index.images:
        assert_registry_has_exact_image(registry_http, copy_repo, child.digest, child)
