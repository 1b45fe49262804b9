"""Tag immutability with real clients: skopeo and podman pushing another image to an
immutable tag fail with the rule's message on stderr and the tag keeps its digest;
pushing the same image again succeeds; deleting the tag fails.

The module starts its own (open) Portside on a fresh database, because the rule is made
with the `portside` CLI on the server's database, as an operator would: project
`locked` with the rule `--tag 'v*'` (every repository). The server loads rules from the
database on each check, so a rule applies at once, without a restart.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import fresh_database
from tests.durability.server import PORTSIDE, ServerProcess, portside_env

from .conftest import attach_log_on_failure, containers_config, registry_kind, storage_tool
from .images import Image, assert_registry_has_exact_image, build_image, write_layout
from .tooling import (
    CommandError,
    ContainersStorageTool,
    RegistryHTTP,
    Result,
    Skopeo,
    repo_component,
    require_binary,
)

pytestmark = pytest.mark.clients

TLS = "--tls-verify=false"
PROJECT = "locked"
RULE = "immutability rule 1 of project 'locked' (repositories '**', tags 'v*')"


@dataclass
class LockedRegistry:
    server: ServerProcess

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def cli(self, *args: str) -> Result:
        """`portside ARGS --data-dir DATA` on the server's database."""
        argv = (PORTSIDE, *args, "--data-dir", str(self.server.data_dir))
        proc = subprocess.run(
            argv,
            env=portside_env(self.server.database_url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
        if proc.returncode != 0:
            raise CommandError(result.describe())
        return result


@pytest.fixture(scope="module")
def locked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LockedRegistry]:
    if registry_kind() != "portside":
        pytest.skip("tag immutability is a Portside feature")
    root = tmp_path_factory.mktemp("immutability-server")
    with fresh_database(root) as database_url:
        (root / "data").mkdir()
        (root / "logs").mkdir()
        process = ServerProcess(
            data_dir=root / "data", database_url=database_url, log_dir=root / "logs"
        )
        try:
            registry = LockedRegistry(process.start())
            attach_log_on_failure(
                request.config, "locked", "portside (immutability) log (tail)", process.log_tail
            )
            registry.cli("project", "create", PROJECT)
            added = registry.cli("project", "immutability", "add", PROJECT, "--tag", "v*")
            assert added.stdout.strip() == f"added {RULE}"
            yield registry
        finally:
            process.stop()


@pytest.fixture(scope="module")
def locked_http(locked: LockedRegistry) -> Iterator[RegistryHTTP]:
    http = RegistryHTTP(locked.server.url)
    yield http
    http.close()


@pytest.fixture(scope="module")
def locked_env(locked: LockedRegistry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return containers_config(
        tmp_path_factory.mktemp("containers-conf-locked"), insecure=locked.host
    )


@pytest.fixture
def skopeo(locked_env: dict[str, str]) -> Skopeo:
    return Skopeo(require_binary("skopeo"), locked_env)


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory, locked_env: dict[str, str]
) -> ContainersStorageTool:
    return storage_tool("podman", tmp_path_factory, locked_env)


@dataclass(frozen=True)
class Case:
    registry: LockedRegistry
    http: RegistryHTTP
    repo: str
    first: Image
    second: Image
    layout: Path  # both images, under the refs `first` and `second`

    def ref(self, tag: str) -> str:
        return f"{self.registry.host}/{self.repo}:{tag}"


@pytest.fixture
def case(
    request: pytest.FixtureRequest,
    locked: LockedRegistry,
    locked_http: RegistryHTTP,
    session_nonce: str,
    tmp_path: Path,
) -> Case:
    name = repo_component(request.node.name)
    seed = f"immutability/{name}#{session_nonce}"
    first = build_image(f"{seed}/first", big_layer_kib=256)
    second = build_image(f"{seed}/second", big_layer_kib=256)
    layout = write_layout(tmp_path / "layout", {"first": first, "second": second})
    return Case(locked, locked_http, f"{PROJECT}/{name}", first, second, layout)


def assert_refused(result: Result, tag: str, repo: str) -> str:
    """The command failed, and its stderr carries the registry's DENIED message."""
    assert result.returncode != 0, result.describe()
    stderr = re.sub(r"\s+", " ", result.stderr)
    assert "denied" in stderr.lower(), result.describe()
    assert f"tag '{tag}' of {repo} is protected by {RULE}" in stderr, result.describe()
    return stderr


def copy(skopeo: Skopeo, case: Case, ref: str, tag: str, *, check: bool = True) -> Result:
    return skopeo(
        "copy", "--quiet", "--dest-tls-verify=false", Skopeo.EXACT,
        f"oci:{case.layout}:{ref}", f"docker://{case.ref(tag)}", check=check,
    )  # fmt: skip


def test_skopeo_cannot_move_an_immutable_tag(skopeo: Skopeo, case: Case) -> None:
    copy(skopeo, case, "first", "v1")
    refused = copy(skopeo, case, "second", "v1", check=False)
    assert_refused(refused, "v1", case.repo)
    assert "cannot be moved to another manifest" in refused.stderr
    assert_registry_has_exact_image(case.http, case.repo, "v1", case.first)

    # The same image again succeeds (a CI job run twice); other tags are not protected.
    copy(skopeo, case, "first", "v1")
    copy(skopeo, case, "second", "latest")
    copy(skopeo, case, "first", "latest")
    assert_registry_has_exact_image(case.http, case.repo, "v1", case.first)
    assert case.http.tags(case.repo) == ["latest", "v1"]


def test_skopeo_cannot_delete_an_immutable_tag(skopeo: Skopeo, case: Case) -> None:
    copy(skopeo, case, "first", "v1")
    copy(skopeo, case, "second", "dev")
    # skopeo deletes the manifest the tag points to, by digest, and prints the error body.
    refused = skopeo("delete", TLS, f"docker://{case.ref('v1')}", check=False)
    assert f"manifest {case.first.digest} cannot be deleted" in assert_refused(
        refused, "v1", case.repo
    )
    assert_registry_has_exact_image(case.http, case.repo, "v1", case.first)
    # An image without protected tags goes.
    skopeo("delete", TLS, f"docker://{case.ref('dev')}")
    assert case.http.tags(case.repo) == ["v1"]


def test_podman_cannot_move_an_immutable_tag(podman: ContainersStorageTool, case: Case) -> None:
    ref = case.ref("v1")
    try:
        podman("pull", "--quiet", f"oci:{case.layout}:first")
        podman("pull", "--quiet", f"oci:{case.layout}:second")
        first_id = case.first.config_digest.removeprefix("sha256:")
        second_id = case.second.config_digest.removeprefix("sha256:")
        podman("tag", first_id, ref)
        podman("push", "--quiet", TLS, ref)
        pushed = case.http.manifest(case.repo, "v1").digest
        assert pushed is not None

        podman("tag", second_id, ref)  # the local name now means the other image
        refused = podman("push", "--quiet", TLS, ref, check=False)
        assert_refused(refused, "v1", case.repo)
        assert case.http.manifest(case.repo, "v1").digest == pushed

        podman("tag", first_id, ref)
        podman("push", "--quiet", TLS, ref)
        assert case.http.manifest(case.repo, "v1").digest == pushed
        # Another tag of the same repository takes the other image.
        podman("tag", second_id, case.ref("latest"))
        podman("push", "--quiet", TLS, case.ref("latest"))
        assert case.http.tags(case.repo) == ["latest", "v1"]
    finally:
        podman("rmi", "--all", "--force")
