"""The docker CLI, through a private dockerd, against the registry under test.

dockerd runs with vfs storage and no networking setup, on private data,
exec and socket paths, and spawns its own private containerd under the exec
root. 127.0.0.0/8 registries are insecure (plain HTTP) to docker by default.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Target
from .images import (
    Image,
    ImageIndex,
    assert_registry_has_same_content,
    write_docker_archive,
)
from .tooling import (
    DOCKER_MANIFEST,
    CommandError,
    Docker,
    ManagedProcess,
    Skopeo,
    require_binary,
    short_tmpdir,
    socket_ready,
    wait_until,
)

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    cli = require_binary("docker")
    dockerd = require_binary("dockerd")
    data = tmp_path_factory.mktemp("dockerd")
    run_dir = short_tmpdir("psd")  # sockets: dockerd's, and its containerd's under exec/
    sock = run_dir / "docker.sock"
    config = run_dir / "daemon.json"
    config.write_text("{}\n")
    process = ManagedProcess(
        "dockerd",
        [
            dockerd,
            "--config-file", config,
            "--host", f"unix://{sock}",
            "--data-root", data / "root",
            "--exec-root", run_dir / "exec",
            "--pidfile", run_dir / "docker.pid",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--userland-proxy=false",
        ],
        data / "dockerd.log",
    ).start()  # fmt: skip
    client_config = data / "client"
    client_config.mkdir()
    client = Docker(cli, f"unix://{sock}", {"DOCKER_CONFIG": str(client_config)})
    try:
        wait_until(
            lambda: socket_ready(sock) and client("version", check=False).returncode == 0,
            timeout=60,
            what="dockerd",
            interval=0.3,
            alive=process.exit_problem,
        )
        yield client
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"{exc}\n{process.log_tail()}", pytrace=False)
    finally:
        process.stop(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)


def image_id(docker: Docker, ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def repo_digests(docker: Docker, ref: str) -> list[str]:
    out = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout
    digests: list[str] = json.loads(out)
    return digests


def saved_diff_ids(docker: Docker, ref: str, dest: Path) -> list[str]:
    """``docker save`` the image and hash its layer tars (the diff_ids)."""
    docker("save", "-o", dest, ref)
    with tarfile.open(dest) as tar:
        manifest_file = tar.extractfile("manifest.json")
        assert manifest_file is not None
        (entry,) = json.load(manifest_file)
        hashes = []
        for name in entry["Layers"]:
            layer = tar.extractfile(name)
            assert layer is not None
            hashes.append("sha256:" + hashlib.sha256(layer.read()).hexdigest())
    return hashes


def remove_all_images(docker: Docker) -> None:
    ids = docker("images", "--quiet", "--no-trunc").stdout.split()
    if ids:
        docker("rmi", "--force", *sorted(set(ids)))


def test_load_push_rmi_pull(docker: Docker, target: Target, image: Image) -> None:
    http, repo = target.http, target.repo
    local = f"portside-tests/{repo.rsplit('/', 1)[-1]}:loaded"
    docker("load", "--input", write_docker_archive(image, target.scratch("image.tar"), local))
    assert image_id(docker, local) == image.config_digest

    v1 = target.ref("v1")
    docker("tag", local, v1)
    docker("push", v1)
    manifest = assert_registry_has_same_content(http, repo, "v1", image)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    pushed_digest = http.manifest(repo, "v1").digest
    assert pushed_digest is not None
    assert target.ref(pushed_digest) in repo_digests(docker, v1)

    # A second push of the same image only re-tags: every blob already exists.
    docker("tag", local, target.ref("v2"))
    docker("push", target.ref("v2"))
    assert http.manifest(repo, "v2").digest == pushed_digest
    assert http.tags(repo) == ["v1", "v2"]

    remove_all_images(docker)
    with pytest.raises(CommandError):
        docker("image", "inspect", v1)

    docker("pull", v1)
    assert image_id(docker, v1) == image.config_digest
    assert saved_diff_ids(docker, v1, target.scratch("saved.tar")) == image.diff_ids

    remove_all_images(docker)
    docker("pull", target.ref(pushed_digest))
    assert image_id(docker, target.ref(pushed_digest)) == image.config_digest
    remove_all_images(docker)


def test_pull_oci_image_and_index_pushed_by_skopeo(
    docker: Docker, skopeo: Skopeo, target: Target, image: Image, image_index: ImageIndex
) -> None:
    layout = target.layout({"single": image, "multi": image_index})
    skopeo.push_layout(layout, "single", target.ref("single"))
    skopeo.push_layout(layout, "multi", target.ref("multi"), "--all")

    single = target.ref("single")
    docker("pull", single)
    assert image_id(docker, single) == image.config_digest
    assert target.ref(image.digest) in repo_digests(docker, single)
    assert saved_diff_ids(docker, single, target.scratch("single.tar")) == image.diff_ids

    multi = target.ref("multi")
    docker("pull", "--platform", "linux/arm64", multi)
    assert image_id(docker, multi) == image_index.image_for("arm64").config_digest
    assert target.ref(image_index.digest) in repo_digests(docker, multi)
    remove_all_images(docker)
