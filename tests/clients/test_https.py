"""`portside serve` terminating TLS itself: curl, skopeo and podman over verified HTTPS.

The module starts its own Portside (not the session `registry`, which is plain HTTP) with a
certificate from a throwaway CA (tests/tls.py). Clients trust that CA only through the
options under test (`--cacert`, `--dest-cert-dir`/`--src-cert-dir`, `--cert-dir`), and the
containers tools get a registries.conf that marks nothing insecure, so every connection
is verified.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database
from tests.durability.server import PORTSIDE, ServerProcess, free_port, portside_env
from tests.tls import TestPki, make_test_pki, write_private_key

from .conftest import containers_config, storage_tool
from .images import (
    Image,
    Layout,
    assert_layout_has_image,
    assert_registry_has_exact_image,
    assert_registry_has_same_content,
    build_image,
    write_layout,
)
from .tooling import ContainersStorageTool, RegistryHTTP, Skopeo, require_binary, run

pytestmark = pytest.mark.clients


class HttpsRegistry(RegistryHTTP):
    """RegistryHTTP over HTTPS, trusting the test CA."""

    def __init__(self, server: ServerProcess) -> None:
        self.client = httpx.Client(base_url=server.url, timeout=30, verify=server.verify)


@dataclass(frozen=True)
class TlsRegistry:
    """The HTTPS server, a verifying HTTP client for it, and a certs.d directory with its CA."""

    server: ServerProcess
    http: RegistryHTTP
    cert_dir: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def cert_dir(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certs.d-style directory holding only the CA: containers/image reads every *.crt
    in it as a CA (and a *.key would need a client *.cert, so not the pki directory)."""
    directory = tmp_path_factory.mktemp("certs.d")
    shutil.copyfile(pki.ca_certificate, directory / "ca.crt")
    return directory


@pytest.fixture(scope="module")
def server(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("https-server")
    with fresh_database(root) as database_url:
        (root / "data").mkdir()
        (root / "logs").mkdir()
        process = ServerProcess(
            data_dir=root / "data", database_url=database_url, log_dir=root / "logs", tls=pki
        )
        try:
            yield process.start()
        finally:
            process.stop()


@pytest.fixture(scope="module")
def https_registry(server: ServerProcess, cert_dir: Path) -> Iterator[TlsRegistry]:
    http = HttpsRegistry(server)
    yield TlsRegistry(server, http, cert_dir)
    http.close()


@pytest.fixture(scope="module")
def verified_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Private containers configuration that marks no registry insecure."""
    return containers_config(tmp_path_factory.mktemp("containers-conf-tls"), insecure=None)


@pytest.fixture
def skopeo(verified_env: dict[str, str]) -> Skopeo:
    return Skopeo(require_binary("skopeo"), verified_env)


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory, verified_env: dict[str, str]
) -> ContainersStorageTool:
    return storage_tool("podman", tmp_path_factory, verified_env)


def image_for(name: str, nonce: str) -> Image:
    """Content unique to the test and run (containers/image caches layers host-wide)."""
    return build_image(f"tls/{name}#{nonce}", big_layer_kib=512)


# -- plain HTTPS --------------------------------------------------------------------------


def test_curl_verifies_with_the_ca(server: ServerProcess, pki: TestPki) -> None:
    curl = require_binary("curl")
    common = ["--silent", "--show-error", "--output", "/dev/null", "--write-out", "%{http_code}"]
    ok = run([curl, *common, "--cacert", pki.ca_certificate, f"{server.url}/v2/"])
    assert ok.stdout == "200"
    # The DNS name in the certificate's subjectAltName works too.
    by_name = run(
        [curl, *common, "--cacert", pki.ca_certificate,
         "--resolve", f"localhost:{server.port}:127.0.0.1", f"https://localhost:{server.port}/v2/"]
    )  # fmt: skip
    assert by_name.stdout == "200"
    # Without the CA curl refuses the certificate (exit 60: peer certificate not trusted).
    refused = run([curl, *common, f"{server.url}/v2/"], check=False)
    assert refused.returncode == 60, refused.describe()


def test_python_ssl_verifies_with_the_ca(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/v2/", verify=server.verify).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{server.url}/v2/")  # the system / certifi CAs do not know the test CA
    with pytest.raises(httpx.TransportError):  # nothing is served in clear text
        httpx.get(f"http://127.0.0.1:{server.port}/v2/", timeout=5)


# -- containers/image clients --------------------------------------------------------------


def test_skopeo_copy_roundtrip(
    skopeo: Skopeo, https_registry: TlsRegistry, tmp_path: Path, session_nonce: str
) -> None:
    image = image_for("skopeo", session_nonce)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    skopeo("copy", "--quiet", Skopeo.EXACT, "--dest-cert-dir", https_registry.cert_dir,
           f"oci:{layout}:v1", f"docker://{https_registry.host}/tls/test:1")  # fmt: skip
    assert_registry_has_exact_image(https_registry.http, "tls/test", "1", image)

    pulled = tmp_path / "pulled"
    skopeo("copy", "--quiet", Skopeo.EXACT, "--src-cert-dir", https_registry.cert_dir,
           f"docker://{https_registry.host}/tls/test:1", f"oci:{pulled}:back")  # fmt: skip
    assert_layout_has_image(Layout(pulled), image, "back")


def test_skopeo_without_the_ca_fails(
    skopeo: Skopeo, https_registry: TlsRegistry, tmp_path: Path, session_nonce: str
) -> None:
    image = image_for("unverified", session_nonce)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    dest = f"docker://{https_registry.host}/tls/unverified:1"
    result = skopeo("copy", "--quiet", Skopeo.EXACT, f"oci:{layout}:v1", dest, check=False)
    assert result.returncode != 0, result.describe()
    assert "x509: certificate signed by unknown authority" in result.stderr, result.describe()
    assert https_registry.http.manifest_status("tls/unverified", "1") == 404


def test_podman_push_pull(
    podman: ContainersStorageTool, https_registry: TlsRegistry, tmp_path: Path, session_nonce: str
) -> None:
    image = image_for("podman", session_nonce)
    ref = f"{https_registry.host}/tls/podman:1"
    http, cert_dir = https_registry.http, https_registry.cert_dir
    podman("pull", "--quiet", f"oci:{write_layout(tmp_path / 'layout', {'v1': image})}:v1")
    podman("tag", image.config_digest.removeprefix("sha256:"), ref)
    podman("push", "--quiet", "--cert-dir", cert_dir, ref)
    assert_registry_has_same_content(http, "tls/podman", "1", image)
    podman("rmi", "--all", "--force")

    podman("pull", "--quiet", "--cert-dir", cert_dir, ref)
    (info,) = json.loads(podman("image", "inspect", ref).stdout)
    assert f"sha256:{info['Id']}" == image.config_digest
    assert info["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}
    assert info["Digest"] == http.manifest("tls/podman", "1").digest
    podman("rmi", "--all", "--force")


# -- refusing to start ---------------------------------------------------------------------


def serve_with_tls(
    tmp_path: Path, database_url: str, certificate: Path, key: Path
) -> subprocess.CompletedProcess[str]:
    """`portside serve` with tls set; expected to exit before listening."""
    return subprocess.run(
        [PORTSIDE, "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(tmp_path / "data")],
        env=portside_env(
            database_url, PORTSIDE_TLS__CERTIFICATE=str(certificate), PORTSIDE_TLS__KEY=str(key)
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def test_serve_refuses_a_missing_certificate(
    tmp_path: Path, database_url: str, pki: TestPki
) -> None:
    missing = tmp_path / "missing.crt"
    result = serve_with_tls(tmp_path, database_url, missing, pki.key)
    assert result.returncode != 0
    assert f"tls.certificate: cannot read {missing}" in result.stderr, result.stderr


def test_serve_refuses_a_key_of_another_certificate(
    tmp_path: Path, database_url: str, pki: TestPki
) -> None:
    other = write_private_key(tmp_path / "other.key")
    result = serve_with_tls(tmp_path, database_url, pki.certificate, other)
    assert result.returncode != 0
    assert f"tls.key: {other} does not match" in result.stderr, result.stderr
