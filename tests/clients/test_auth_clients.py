"""Real clients against a Portside with authentication on.

The module starts its own Portside (not the session `registry`, which is open) on a fresh
database, with the access log on, and seeds it: admin `admin`; private project `acme`
with `dev` (developer) and `viewer` (guest); public project `pub`; private project
`secret` that only the admin may see; robot `robot$acme+ci` with pull and push. The admin
and the robot are made with the `portside` CLI, as an operator would; the server starts
open and turns authentication on by itself once the first account exists (it looks again
every 2 s), so the fixture waits for GET /v2/ to answer with a challenge.

Every client then signs in its own way: skopeo `--creds`, `podman login`, `docker login`
(through a private dockerd), `ctr --user` (through a private containerd; it tries the
OAuth2 POST to the token endpoint first) and oras-py with Basic credentials.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import oras.provider
import pytest

from portside.auth.accounts import Accounts
from portside.auth.projects import Projects
from portside.auth.roles import Role
from portside.auth.throttle import LoginThrottle
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.conftest import fresh_database
from tests.durability.server import PORTSIDE, ServerProcess, portside_env

from . import test_ctr, test_docker
from .conftest import attach_log_on_failure, containers_config, storage_tool
from .images import (
    Image,
    Layout,
    assert_layout_has_image,
    assert_registry_has_exact_image,
    assert_registry_has_same_content,
    build_image,
    sha256,
    write_docker_archive,
    write_layout,
)
from .test_ctr import SNAPSHOTTER, content, image_target
from .test_docker import image_id, remove_all_images
from .tooling import (
    CommandError,
    ContainersStorageTool,
    Ctr,
    Docker,
    RegistryHTTP,
    Result,
    Skopeo,
    repo_component,
    require_binary,
    wait_until,
)

pytestmark = pytest.mark.clients

# The private dockerd and containerd of test_docker.py / test_ctr.py. The fixtures are
# module-scoped, so this module gets daemons of its own (and docker a fresh DOCKER_CONFIG,
# where `docker login` keeps its credentials).
docker = test_docker.docker
ctr = test_ctr.ctr

PASSWORDS = {"admin": "admin-Secret-1", "dev": "dev-Secret-22", "viewer": "viewer-Secret-333"}
ROBOT = "robot$acme+ci"
SERVICE = "portside"
TLS = "--tls-verify=false"
AUTH_REQUIRED = "unauthorized: authentication required"
DATA_MEDIA_TYPE = "application/vnd.example.portside.data.v1"


def creds(user: str) -> str:
    return f"{user}:{PASSWORDS[user]}"


class AuthenticatedHTTP(RegistryHTTP):
    """RegistryHTTP sending one user's Basic credentials (accepted on /v2 directly)."""

    def __init__(self, url: str, user: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30, auth=(user, PASSWORDS[user]))


@dataclass
class AuthRegistry:
    """The server, the robot's secret, and the operator's CLI on its database."""

    server: ServerProcess
    robot_secret: str = ""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def url(self) -> str:
        return self.server.url

    def ref(self, repo: str, reference: str) -> str:
        sep = "@" if ":" in reference else ":"
        return f"{self.host}/{repo}{sep}{reference}"

    def cli(self, *args: str, input: str | None = None) -> Result:
        """`portside ARGS --data-dir DATA` on the server's database, like an operator.
        Not tooling.run: that adds the caller's whole environment back, PORTSIDE_* too."""
        argv = (PORTSIDE, *args, "--data-dir", str(self.server.data_dir))
        proc = subprocess.run(
            argv,
            env=portside_env(self.server.database_url),
            input=None if input is None else input.encode(),
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            timeout=120,
            check=False,
        )
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
        if proc.returncode != 0:
            raise CommandError(result.describe())
        return result

    def token(self, user: str | None, *scopes: str) -> str:
        """A token from /auth/token, as `user` (None: anonymous)."""
        response = httpx.get(
            f"{self.url}/auth/token",
            params={"service": SERVICE, "scope": list(scopes)},
            auth=(user, PASSWORDS[user]) if user is not None else None,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def requests_to(self, path: str, last: tuple[str, str, int]) -> list[tuple[str, int]]:
        """(method, status) of the requests for `path` from the access log, once the request
        `last` (method, path, status) is in it (the log is flushed every half second)."""

        def entries() -> list[tuple[str, str, int]]:
            lines = self.server.log_text().splitlines()
            parsed = [json.loads(line) for line in lines if '"event": "http.request"' in line]
            return [(entry["method"], entry["path"], entry["status"]) for entry in parsed]

        wait_until(lambda: last in entries(), timeout=10, what=f"{last} in the access log")
        return [(method, status) for method, p, status in entries() if p == path]


@pytest.fixture(scope="module")
def portside(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    root = tmp_path_factory.mktemp("auth-server")
    with fresh_database(root) as database_url:
        (root / "data").mkdir()
        (root / "logs").mkdir()
        process = ServerProcess(
            data_dir=root / "data",
            database_url=database_url,
            log_dir=root / "logs",
            env={"PORTSIDE_LOG__ACCESS": "true", "PORTSIDE_LOG__FORMAT": "json"},
        )
        try:
            registry = AuthRegistry(process.start())
            attach_log_on_failure(
                request.config, "portside", "portside (auth) log (tail)", process.log_tail
            )
            seed(registry)
            wait_until(
                lambda: httpx.get(f"{registry.url}/v2/", timeout=5).status_code == 401,
                timeout=15,
                what="authentication to turn on",
                alive=lambda: None if process.running else process.log_tail(),
            )
            yield registry
        finally:
            process.stop()


def seed(registry: AuthRegistry) -> None:
    """The first admin and the robot through the CLI (an account turns authentication on;
    the robot's secret is printed once, by `--json`); the rest through the services the
    CLI uses, in-process (each CLI run costs about two seconds of start-up)."""
    registry.cli("admin", "create", "admin", "--password-stdin", input=PASSWORDS["admin"] + "\n")
    db = Database(make_engine(registry.server.database_url))
    try:
        accounts, projects = Accounts(db, LoginThrottle(db, 1, 1)), Projects(db)
        for user in ("dev", "viewer"):
            accounts.create_user(user, PASSWORDS[user])
        projects.create("acme", creator="tests")
        projects.create("pub", public=True, creator="tests")
        projects.create("secret", creator="tests")
        projects.set_member("acme", "dev", Role.DEVELOPER)
        projects.set_member("acme", "viewer", Role.GUEST)
    finally:
        db.engine.dispose()
    created = json.loads(
        registry.cli("robot", "create", "acme", "ci", "--permissions", "pull,push", "--json").stdout
    )
    assert created["name"] == ROBOT
    assert created["permissions"] == {"acme": ["pull", "push"]}
    registry.robot_secret = created["secret"]


@pytest.fixture(scope="module")
def admin_http(portside: AuthRegistry) -> Iterator[RegistryHTTP]:
    """For checking what the registry stored: the admin may read every repository."""
    http = AuthenticatedHTTP(portside.url, "admin")
    yield http
    http.close()


@pytest.fixture(scope="module")
def auth_env(portside: AuthRegistry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Private containers configuration: this server is insecure (plain HTTP), and the
    auth file starts empty, so only the credentials a test passes are used."""
    conf = tmp_path_factory.mktemp("containers-conf-auth")
    return containers_config(conf, insecure=portside.host)


@pytest.fixture
def skopeo(auth_env: dict[str, str]) -> Skopeo:
    return Skopeo(require_binary("skopeo"), auth_env)


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory, auth_env: dict[str, str]
) -> ContainersStorageTool:
    """podman with an auth file of its own: `podman login` must not leak into skopeo."""
    auth = tmp_path_factory.mktemp("podman-auth") / "auth.json"
    auth.write_text('{"auths": {}}\n')
    return storage_tool("podman", tmp_path_factory, auth_env | {"REGISTRY_AUTH_FILE": str(auth)})


@dataclass(frozen=True)
class Case:
    """What one test works with: the server, an admin's view of it, an image with content
    unique to the test and run, a repository name, and scratch space."""

    registry: AuthRegistry
    admin: RegistryHTTP
    image: Image
    name: str
    tmp: Path

    def repo(self, project: str) -> str:
        return f"{project}/{self.name}"

    def ref(self, project: str, reference: str = "v1") -> str:
        return self.registry.ref(self.repo(project), reference)

    def layout(self, directory: str) -> Path:
        """The image in a new OCI layout, under the ref `v1`."""
        return write_layout(self.tmp / directory, {"v1": self.image})


@pytest.fixture
def case(
    request: pytest.FixtureRequest,
    portside: AuthRegistry,
    admin_http: RegistryHTTP,
    session_nonce: str,
    tmp_path: Path,
) -> Case:
    name = repo_component(request.node.name)
    image = build_image(f"auth/{name}#{session_nonce}", big_layer_kib=512)
    return Case(portside, admin_http, image, name, tmp_path)


def push(skopeo: Skopeo, case: Case, project: str, user: str, tag: str = "v1") -> str:
    """skopeo copy of the case's image, byte for byte, signed in as `user`; its ref."""
    ref = case.ref(project, tag)
    skopeo.push_layout(case.layout(f"push-{project}-{tag}"), "v1", ref, "--dest-creds", creds(user))
    return ref


def fatal_message(result: Result) -> str:
    """The message of a containers tool's `level=fatal` line, without its timestamp."""
    assert result.returncode != 0, result.describe()
    match = re.search(r'level=fatal msg="(.*)"\s*$', result.stderr, re.DOTALL)
    assert match is not None, result.describe()
    return match.group(1)


# -- skopeo --------------------------------------------------------------------------------


def test_skopeo_developer_pushes_guest_pulls(skopeo: Skopeo, case: Case) -> None:
    push(skopeo, case, "acme", "dev")
    assert_registry_has_exact_image(case.admin, case.repo("acme"), "v1", case.image)

    for reference, ref_name in (("v1", "tag"), (case.image.digest, "digest")):
        pulled = skopeo.pull_layout(
            case.ref("acme", reference), case.tmp / ref_name, ref_name,
            "--src-creds", creds("viewer"),
        )  # fmt: skip
        assert_layout_has_image(Layout(pulled), case.image, ref_name)


def test_skopeo_anonymous_pull_from_public_project(skopeo: Skopeo, case: Case) -> None:
    ref = push(skopeo, case, "pub", "admin")
    pulled = skopeo.pull_layout(ref, case.tmp / "out", "anon", "--src-no-creds")
    assert_layout_has_image(Layout(pulled), case.image, "anon")
    raw = skopeo("inspect", "--raw", TLS, "--no-creds", f"docker://{ref}")
    assert raw.stdout_bytes == case.image.manifest


def test_skopeo_anonymous_private_repository_looks_missing(skopeo: Skopeo, case: Case) -> None:
    src = f"docker://{push(skopeo, case, 'acme', 'dev')}"
    viewer = skopeo("inspect", "--raw", TLS, "--creds", creds("viewer"), src)
    assert viewer.stdout_bytes == case.image.manifest

    existing = skopeo("inspect", "--raw", TLS, "--no-creds", src, check=False)
    missing = skopeo(
        "inspect", "--raw", TLS, "--no-creds",
        f"docker://{case.registry.ref('acme/nothing', 'v1')}", check=False,
    )  # fmt: skip
    existing_message, missing_message = fatal_message(existing), fatal_message(missing)
    assert AUTH_REQUIRED in existing_message, existing.describe()
    assert existing_message.replace(case.repo("acme"), "acme/REPO") == (
        missing_message.replace("acme/nothing", "acme/REPO")
    )


def test_skopeo_robot_secret_and_rotation(skopeo: Skopeo, case: Case) -> None:
    registry, repo, layout = case.registry, case.repo("acme"), case.layout("in")
    old = f"{ROBOT}:{registry.robot_secret}"
    skopeo.push_layout(layout, "v1", case.ref("acme"), "--dest-creds", old)
    assert_registry_has_exact_image(case.admin, repo, "v1", case.image)

    rotated = json.loads(registry.cli("robot", "rotate", ROBOT, "--json").stdout)
    assert rotated["name"] == ROBOT
    registry.robot_secret = rotated["secret"]
    new = f"{ROBOT}:{rotated['secret']}"

    refused = skopeo(
        "copy", "--quiet", Skopeo.EXACT, "--dest-tls-verify=false", "--dest-creds", old,
        f"oci:{layout}:v1", f"docker://{case.ref('acme', 'v2')}", check=False,
    )  # fmt: skip
    assert "invalid username/password" in fatal_message(refused), refused.describe()
    assert case.admin.manifest_status(repo, "v2") == 404

    skopeo.push_layout(layout, "v1", case.ref("acme", "v2"), "--dest-creds", new)
    assert case.admin.tags(repo) == ["v1", "v2"]


def test_skopeo_guest_push_is_denied(skopeo: Skopeo, case: Case) -> None:
    repo = case.repo("acme")
    refused = skopeo(
        "copy", "--quiet", Skopeo.EXACT, "--dest-tls-verify=false",
        "--dest-creds", creds("viewer"), f"oci:{case.layout('in')}:v1",
        f"docker://{case.ref('acme')}", check=False,
    )  # fmt: skip
    message = fatal_message(refused)
    assert f"denied: push access to repository '{repo}' is denied" in message, refused.describe()
    assert case.admin.manifest_status(repo, "v1") == 404
    for digest in case.image.blobs():
        assert case.admin.client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_skopeo_mounts_only_from_repositories_the_pusher_may_pull(
    skopeo: Skopeo, case: Case
) -> None:
    """containers/image remembers where it pushed each blob and offers those repositories
    for a cross-repository mount: one the pusher may not read must not be mounted from."""
    hidden, readable = case.repo("secret"), case.repo("acme")
    push(skopeo, case, "secret", "admin")
    push(skopeo, case, "acme", "dev")
    assert_registry_has_exact_image(case.admin, readable, "v1", case.image)
    uploads = f"/v2/{readable}/blobs/uploads/"
    manifest_put = ("PUT", f"/v2/{readable}/manifests/v1", 201)
    # Each blob was uploaded (POST 202, then PATCH and PUT), none mounted (POST 201).
    requests = case.registry.requests_to(uploads, manifest_put)
    assert requests == [("POST", 202)] * len(case.image.blobs())

    # Asked explicitly, the registry starts an upload instead of mounting (as the spec asks).
    dev = AuthenticatedHTTP(case.registry.url, "dev")
    with dev.client:
        digest = case.image.layers[0].digest
        response = dev.client.post(uploads, params={"mount": digest, "from": hidden})
        assert response.status_code == 202, response.text
        response = dev.client.post(uploads, params={"mount": digest, "from": readable})
        assert response.status_code == 201, response.text


def test_skopeo_list_tags(skopeo: Skopeo, case: Case) -> None:
    for tag in ("1.0", "latest"):
        push(skopeo, case, "acme", "dev", tag)
    src = f"docker://{case.registry.host}/{case.repo('acme')}"
    listed = json.loads(skopeo("list-tags", TLS, "--creds", creds("viewer"), src).stdout)
    assert listed == {
        "Repository": f"{case.registry.host}/{case.repo('acme')}",
        "Tags": ["1.0", "latest"],
    }
    anonymous = skopeo("list-tags", TLS, "--no-creds", src, check=False)
    assert AUTH_REQUIRED in fatal_message(anonymous), anonymous.describe()


# -- the catalog ---------------------------------------------------------------------------


def catalog(registry: AuthRegistry, token: str) -> list[str]:
    response = httpx.get(
        f"{registry.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    repositories: list[str] = response.json()["repositories"]
    return repositories


def test_catalog_shows_a_guest_only_its_projects(skopeo: Skopeo, case: Case) -> None:
    registry = case.registry
    pushed = {"acme": "dev", "pub": "admin", "secret": "admin"}
    for project, user in pushed.items():
        push(skopeo, case, project, user)

    everything = catalog(registry, registry.token("admin", "registry:catalog:*"))
    assert {case.repo(project) for project in pushed} <= set(everything)

    viewer = catalog(registry, registry.token("viewer", "registry:catalog:*"))
    assert {case.repo("acme"), case.repo("pub")} <= set(viewer)
    assert {repo.split("/")[0] for repo in viewer} == {"acme", "pub"}
    assert viewer == [repo for repo in everything if not repo.startswith("secret/")]

    anonymous = catalog(registry, registry.token(None, "registry:catalog:*"))
    assert anonymous == [repo for repo in everything if repo.startswith("pub/")]

    # A token without the catalog scope is challenged for it.
    plain = registry.token("viewer", f"repository:{case.repo('acme')}:pull")
    refused = httpx.get(
        f"{registry.url}/v2/_catalog", headers={"Authorization": f"Bearer {plain}"}, timeout=30
    )
    assert refused.status_code == 401
    assert 'scope="registry:catalog:*"' in refused.headers["www-authenticate"]


# -- podman --------------------------------------------------------------------------------


def assert_podman_has(podman: ContainersStorageTool, ref: str, image: Image, digest: str) -> None:
    (info,) = json.loads(podman("image", "inspect", ref).stdout)
    assert f"sha256:{info['Id']}" == image.config_digest
    assert info["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}
    assert info["Digest"] == digest


def test_podman_login_push_pull_logout(podman: ContainersStorageTool, case: Case) -> None:
    host, repo, ref = case.registry.host, case.repo("acme"), case.ref("acme")
    podman("pull", "--quiet", f"oci:{case.layout('in')}:v1")
    podman("tag", case.image.config_digest.removeprefix("sha256:"), ref)
    anonymous = podman("push", "--quiet", TLS, ref, check=False)
    assert anonymous.returncode != 0, anonymous.describe()

    podman("login", TLS, "--username", "dev", "--password-stdin", host,
           input=PASSWORDS["dev"] + "\n")  # fmt: skip
    try:
        assert podman("login", "--get-login", host).stdout.strip() == "dev"
        podman("push", "--quiet", TLS, ref)
        assert_registry_has_same_content(case.admin, repo, "v1", case.image)
        digest = case.admin.manifest(repo, "v1").digest
        assert digest is not None
        podman("rmi", "--all", "--force")
        podman("pull", "--quiet", TLS, ref)
        assert_podman_has(podman, ref, case.image, digest)
    finally:
        podman("logout", host)
        podman("rmi", "--all", "--force")

    assert podman("login", "--get-login", host, check=False).returncode != 0
    refused = podman("pull", "--quiet", TLS, ref, check=False)
    assert refused.returncode != 0, refused.describe()


def test_podman_anonymous_pull_from_public_project(
    podman: ContainersStorageTool, skopeo: Skopeo, case: Case
) -> None:
    ref = push(skopeo, case, "pub", "admin")
    try:
        podman("pull", "--quiet", TLS, ref)
        assert_podman_has(podman, ref, case.image, case.image.digest)
    finally:
        podman("rmi", "--all", "--force")


# -- docker --------------------------------------------------------------------------------


def test_docker_login_push_pull(docker: Docker, case: Case) -> None:
    host, repo, ref = case.registry.host, case.repo("acme"), case.ref("acme")
    docker("load", "--input", write_docker_archive(case.image, case.tmp / "image.tar", ref))
    docker("login", host, "--username", "dev", "--password-stdin",
           input=PASSWORDS["dev"] + "\n")  # fmt: skip
    try:
        docker("push", ref)
        assert_registry_has_same_content(case.admin, repo, "v1", case.image)
        remove_all_images(docker)
        docker("pull", ref)
        assert image_id(docker, ref) == case.image.config_digest
    finally:
        docker("logout", host)
        remove_all_images(docker)


def test_docker_login_as_robot_pushes(docker: Docker, case: Case) -> None:
    """A robot's name has `$` and `+` in it; docker keeps it in its config as given."""
    host, repo, ref = case.registry.host, case.repo("acme"), case.ref("acme")
    docker("load", "--input", write_docker_archive(case.image, case.tmp / "image.tar", ref))
    docker("login", host, "--username", ROBOT, "--password-stdin",
           input=case.registry.robot_secret + "\n")  # fmt: skip
    try:
        docker("push", ref)
        assert_registry_has_same_content(case.admin, repo, "v1", case.image)
    finally:
        docker("logout", host)
        remove_all_images(docker)


def test_docker_pull_of_private_repository_needs_login(
    docker: Docker, skopeo: Skopeo, case: Case
) -> None:
    ref = push(skopeo, case, "acme", "dev")
    refused = docker("pull", ref, check=False)
    assert refused.returncode != 0, refused.describe()
    assert "pull access denied" in refused.stderr, refused.describe()
    with pytest.raises(CommandError):
        docker("image", "inspect", ref)


def test_docker_anonymous_pull_from_public_project(
    docker: Docker, skopeo: Skopeo, case: Case
) -> None:
    ref = push(skopeo, case, "pub", "admin")
    try:
        docker("pull", ref)
        assert image_id(docker, ref) == case.image.config_digest
    finally:
        remove_all_images(docker)


# -- ctr (containerd) ----------------------------------------------------------------------


def test_ctr_pull_with_user(ctr: Ctr, skopeo: Skopeo, case: Case) -> None:
    ref, image = push(skopeo, case, "acme", "dev"), case.image
    anonymous = ctr("images", "pull", "--plain-http", *SNAPSHOTTER, ref, check=False)
    assert anonymous.returncode != 0, anonymous.describe()

    ctr("images", "pull", "--plain-http", "--user", creds("dev"), *SNAPSHOTTER, ref)
    assert image_target(ctr, ref) == image.digest
    assert content(ctr, image.digest) == image.manifest
    for digest, data in image.blobs().items():
        assert content(ctr, digest) == data
    ctr("images", "rm", ref)


# -- oras (oras-py) ------------------------------------------------------------------------


def oras_client(registry: AuthRegistry, user: str) -> oras.provider.Registry:
    """oras-py sending Basic credentials. Its default token backend keeps the first token
    it gets (pull only, from the challenge to its first HEAD) for every later request and
    only asks again on a 403 carrying a challenge, so it cannot push with token auth."""
    client = oras.provider.Registry(hostname=registry.host, insecure=True, auth_backend="basic")
    client.auth.set_basic_auth(user, PASSWORDS[user])
    return client


def test_oras_push_pull_with_password(case: Case, session_nonce: str) -> None:
    registry, repo = case.registry, case.repo("acme")
    files = {
        "notes.txt": f"artifact {case.name}#{session_nonce}\n".encode(),
        "payload.bin": sha256(session_nonce.encode()).encode() * 4096,
    }
    source = case.tmp / "in"
    source.mkdir()
    for file_name, data in files.items():
        (source / file_name).write_bytes(data)
    response = oras_client(registry, "dev").push(
        target=case.ref("acme", "bundle"),
        files=[f"{source / file_name}:{DATA_MEDIA_TYPE}" for file_name in files],
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text

    manifest = case.admin.manifest(repo, "bundle").json()
    stored = {
        layer["annotations"]["org.opencontainers.image.title"]: case.admin.blob(
            repo, layer["digest"]
        )
        for layer in manifest["layers"]
    }
    assert stored == files

    out = case.tmp / "out"
    pulled = oras_client(registry, "viewer").pull(
        target=case.ref("acme", "bundle"), outdir=str(out)
    )
    assert sorted(Path(path).name for path in pulled) == sorted(files)
    for file_name, data in files.items():
        assert (out / file_name).read_bytes() == data


def test_token_without_push_scope_is_challenged_for_it(case: Case) -> None:
    registry, repo = case.registry, case.repo("acme")
    head = httpx.head(f"{registry.url}/v2/{repo}/blobs/{sha256(b'x')}", timeout=30)
    assert head.status_code == 401
    assert f'scope="repository:{repo}:pull"' in head.headers["www-authenticate"]
    token = registry.token("dev", f"repository:{repo}:pull")  # what the challenge asked for
    response = httpx.post(
        f"{registry.url}/v2/{repo}/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="repository:{repo}:pull,push"' in challenge
