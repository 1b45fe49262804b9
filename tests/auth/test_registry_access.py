"""Access control on /v2 through the guard, in-process: upload ownership, cross-repository
mounts, the catalog filter, pushes to missing projects, revocation, odd credentials, and
an open registry by configuration."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from portside.auth.roles import Role
from tests.api.helpers import (
    assert_error,
    error_message,
    push_blob,
    push_image,
    raw_request,
    sha256,
    with_query,
)
from tests.auth.conftest import PASSWORD, Registry, basic, bearer
from tests.auth.fixtures import make_robot, populated

UPLOAD = b"layer bytes started by developer A"


@pytest.fixture
def two_developers(registry: Registry) -> Registry:
    registry.auth.accounts.create_user("developer2", PASSWORD)
    registry.auth.projects.set_member("acme", "developer2", Role.DEVELOPER)
    return registry


# --- upload ownership -----------------------------------------------------------------


def _start(client: TestClient, repo: str = "acme/app") -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert isinstance(location, str)
    return location


def _others_are_refused(other: TestClient, location: str) -> None:
    digest = sha256(UPLOAD)
    attempts = {
        "PATCH": other.patch(location, content=b"intruder"),
        "PUT": other.put(with_query(location, f"digest={digest}"), content=UPLOAD),
        "GET": other.get(location),
        "DELETE": other.delete(location),
    }
    for method, response in attempts.items():
        assert response.status_code == 404, (method, response.text)
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("other", ["developer2", "maintainer"])
def test_upload_belongs_to_who_started_it(two_developers: Registry, other: str) -> None:
    registry = two_developers
    owner = registry.as_caller(basic("developer"))
    location = _start(owner)
    _others_are_refused(registry.as_caller(basic(other)), location)
    # ...and with a token the other user is refused just the same.
    token = registry.token("repository:acme/app:pull,push,delete", user=other)
    _others_are_refused(registry.as_caller(bearer(token)), location)

    # The owner carries on: nothing the others sent got in.
    patched = owner.patch(location, content=UPLOAD)
    assert patched.status_code == 202, patched.text
    assert owner.get(location).status_code == 204
    done = owner.put(with_query(location, f"digest={sha256(UPLOAD)}"))
    assert done.status_code == 201, done.text
    blob = owner.get(f"/v2/acme/app/blobs/{sha256(UPLOAD)}")
    assert blob.content == UPLOAD


def test_owner_may_cancel_and_use_a_token(two_developers: Registry) -> None:
    registry = two_developers
    location = _start(registry.as_caller(basic("developer")))
    token = registry.token("repository:acme/app:pull,push", user="developer")
    as_token = registry.as_caller(bearer(token))
    assert as_token.get(location).status_code == 204
    assert as_token.delete(location).status_code == 204
    assert as_token.get(location).status_code == 404


# --- cross-repository mounts ------------------------------------------------------------


@pytest.fixture
def mount_sources(registry: Registry) -> tuple[Registry, str]:
    """The same blob in other/src (private project developer is not in), pub/src and
    acme/lib; returns its digest."""
    registry.auth.projects.create("other")
    admin = registry.as_caller(basic("admin"))
    data = b"a shared base layer"
    for repo in ("other/src", "pub/src", "acme/lib"):
        push_blob(admin, repo, data)
    return registry, sha256(data)


def _mount(client: TestClient, source: str, digest: str) -> httpx.Response:
    return client.post(f"/v2/acme/app/blobs/uploads/?mount={digest}&from={source}")


def test_mount_from_unpullable_repository_falls_back_to_upload(
    mount_sources: tuple[Registry, str],
) -> None:
    registry, digest = mount_sources
    developer = registry.as_caller(basic("developer"))
    response = _mount(developer, "other/src", digest)
    assert response.status_code == 202, response.text
    assert "/blobs/uploads/" in response.headers["location"]
    assert developer.head(f"/v2/acme/app/blobs/{digest}").status_code == 404
    # A source that does not exist at all answers the same.
    missing = _mount(developer, "other/nothing", digest)
    assert missing.status_code == 202


@pytest.mark.parametrize("source", ["pub/src", "acme/lib"])
def test_mount_from_pullable_repository(mount_sources: tuple[Registry, str], source: str) -> None:
    registry, digest = mount_sources
    developer = registry.as_caller(basic("developer"))
    response = _mount(developer, source, digest)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert developer.head(f"/v2/acme/app/blobs/{digest}").status_code == 200


def test_mount_with_token_needs_pull_on_source_in_token(
    mount_sources: tuple[Registry, str],
) -> None:
    registry, digest = mount_sources
    # What docker asks for: push on the target, pull on the source.
    refused = registry.token(
        "repository:acme/app:pull,push", "repository:other/src:pull", user="developer"
    )
    assert _mount(registry.as_caller(bearer(refused)), "other/src", digest).status_code == 202
    allowed = registry.token(
        "repository:acme/app:pull,push", "repository:pub/src:pull", user="developer"
    )
    assert _mount(registry.as_caller(bearer(allowed)), "pub/src", digest).status_code == 201


# --- catalog ----------------------------------------------------------------------------


@pytest.fixture
def catalog_registry(registry: Registry) -> Registry:
    registry.auth.projects.create("other")
    admin = registry.as_caller(basic("admin"))
    for repo in ("acme/app", "acme/web", "pub/base", "other/thing"):
        push_image(admin, repo, "v1")
    return registry


def _catalog(client: TestClient) -> list[str]:
    response = client.get("/v2/_catalog")
    assert response.status_code == 200, response.text
    names = response.json()["repositories"]
    assert isinstance(names, list)
    return names


ACME = ["acme/app", "acme/web"]


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, ["pub/base"]),
        ("outsider", ["pub/base"]),
        ("limitedguest", ["pub/base"]),
        ("guest", [*ACME, "pub/base"]),
        ("developer", [*ACME, "pub/base"]),
        ("projectadmin", [*ACME, "pub/base"]),
        ("admin", [*ACME, "other/thing", "pub/base"]),
    ],
)
def test_catalog_lists_visible_repositories(
    catalog_registry: Registry, user: str | None, expected: list[str]
) -> None:
    headers = basic(user) if user else {}
    assert _catalog(catalog_registry.as_caller(headers)) == expected
    token = catalog_registry.token("registry:catalog:*", user=user)
    assert _catalog(catalog_registry.as_caller(bearer(token))) == expected


def test_catalog_for_robots(catalog_registry: Registry) -> None:
    registry = catalog_registry
    project_robot, project_secret = make_robot(registry, "ci", "acme", frozenset({"pull"}))
    system_robot, system_secret = make_robot(
        registry, "sys", None, grants={"other": frozenset({"pull"})}
    )
    for name, secret, expected in (
        (project_robot, project_secret, [*ACME, "pub/base"]),
        (system_robot, system_secret, ["other/thing", "pub/base"]),
    ):
        assert _catalog(registry.as_caller(basic(name, secret))) == expected
        token = registry.token("registry:catalog:*", user=name, password=secret)
        assert _catalog(registry.as_caller(bearer(token))) == expected


def test_catalog_needs_catalog_scope_in_token(catalog_registry: Registry) -> None:
    token = catalog_registry.token("repository:acme/app:pull", user="admin")
    response = catalog_registry.get("/v2/_catalog", headers=bearer(token))
    assert response.status_code == 401
    assert 'scope="registry:catalog:*"' in response.headers["www-authenticate"]


def test_catalog_follows_membership_changes(catalog_registry: Registry) -> None:
    registry = catalog_registry
    token = registry.token("registry:catalog:*", user="guest")
    registry.auth.projects.remove_member("acme", "guest")
    registry.forget_caches()
    # The catalog filter is decided per request, even for a token issued before.
    assert _catalog(registry.as_caller(bearer(token))) == ["pub/base"]
    assert _catalog(registry.as_caller(basic("guest"))) == ["pub/base"]


# --- projects that do not exist -----------------------------------------------------------


def test_admin_push_to_missing_project_is_denied(registry: Registry) -> None:
    admin = registry.as_caller(basic("admin"))
    response = admin.post("/v2/ghost/app/blobs/uploads/")
    assert_error(response, 403, "DENIED")
    assert "'ghost'" in error_message(response)
    assert "portside project create ghost" in error_message(response)
    manifest = admin.put(
        "/v2/ghost/app/manifests/v1",
        content=b"{}",
        headers={"content-type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert_error(manifest, 403, "DENIED")
    # Nothing was created on the way.
    assert [p.name for p in registry.auth.projects.find()] == ["acme", "pub"]
    # Pulling from it is not a push: a plain 404.
    assert admin.get("/v2/ghost/app/manifests/v1").status_code == 404


@pytest.fixture
def auto_create(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    settings = {"auto_create": True, "creation": "users"}
    with populated(tmp_path, database_url, projects=settings) as registry:
        yield registry


def test_user_push_creates_private_project(auto_create: Registry) -> None:
    registry = auto_create
    pusher = registry.as_caller(basic("outsider"))
    manifest = push_image(pusher, "newproj/app", "v1")
    project = registry.auth.projects.get("newproj")
    assert not project.public
    assert project.created_by == "outsider"
    members = registry.auth.projects.members("newproj")
    assert [(m.kind, m.name, m.role) for m in members] == [("user", "outsider", Role.PROJECT_ADMIN)]
    registry.forget_caches()
    assert pusher.get(f"/v2/newproj/app/manifests/{manifest.digest}").status_code == 200
    # Private: neither anonymous callers nor other users see it.
    for headers in ({}, basic("developer")):
        response = registry.get("/v2/newproj/app/manifests/v1", headers=headers)
        assert response.status_code == 401, headers


def test_user_push_with_token_creates_project_they_administer(auto_create: Registry) -> None:
    """docker and podman always push with a token, whose identity names the user only:
    the creator must still become the new project's project-admin."""
    registry = auto_create
    token = registry.token("repository:made/app:pull,push", user="developer")
    push_image(registry.as_caller(bearer(token)), "made/app", "v1")
    assert registry.auth.projects.get("made").public is False
    members = registry.auth.projects.members("made")
    assert [(m.name, m.role) for m in members] == [("developer", Role.PROJECT_ADMIN)]
    # ...so a later token (after this one expired) still reaches it.
    later = registry.token("repository:made/app:pull,push,delete", user="developer")
    assert registry.get("/v2/made/app/manifests/v1", headers=bearer(later)).status_code == 200
    assert registry.get("/v2/made/app/manifests/v1").status_code == 401


def test_anonymous_and_robots_do_not_create_projects(auto_create: Registry) -> None:
    registry = auto_create
    assert registry.client.post("/v2/anon/app/blobs/uploads/").status_code == 401
    robot, secret = make_robot(registry)
    robot_push = registry.as_caller(basic(robot, secret)).post("/v2/bot/app/blobs/uploads/")
    assert robot_push.status_code == 401
    assert [p.name for p in registry.auth.projects.find()] == ["acme", "pub"]


def test_users_do_not_create_projects_when_only_admins_may(
    tmp_path: Path, database_url: str
) -> None:
    with populated(tmp_path, database_url, projects={"auto_create": True}) as registry:
        response = registry.as_caller(basic("developer")).post("/v2/mine/app/blobs/uploads/")
        assert response.status_code == 401
        admin = registry.as_caller(basic("admin"))
        push_image(admin, "made/app", "v1")
        made = registry.auth.projects.get("made")
        assert made.created_by == "admin"
        assert not made.public


def test_admin_push_with_token_creates_project(tmp_path: Path, database_url: str) -> None:
    """With `creation: admins`, an admin's token (which names the user only) may create."""
    with populated(tmp_path, database_url, projects={"auto_create": True}) as registry:
        token = registry.token("repository:made/app:pull,push", user="admin")
        client = registry.as_caller(bearer(token))
        response = client.post("/v2/made/app/blobs/uploads/")
        assert response.status_code == 202, response.text
        assert registry.auth.projects.get("made").created_by == "admin"


def test_auto_create_with_invalid_project_name_is_a_client_error(auto_create: Registry) -> None:
    name = "a" * 70 + "/app"
    response = auto_create.as_caller(basic("developer")).post(f"/v2/{name}/blobs/uploads/")
    assert 400 <= response.status_code < 500, response.text


# --- revocation ---------------------------------------------------------------------------


@pytest.fixture
def pushed(registry: Registry) -> Registry:
    push_image(registry.as_caller(basic("admin")), "acme/app", "v1")
    return registry


def test_removed_membership_takes_effect(pushed: Registry) -> None:
    registry = pushed
    assert registry.get("/v2/acme/app/manifests/v1", headers=basic("developer")).status_code == 200
    registry.auth.projects.remove_member("acme", "developer")
    registry.forget_caches()
    response = registry.get("/v2/acme/app/manifests/v1", headers=basic("developer"))
    assert response.status_code == 401
    token = registry.token("repository:acme/app:pull,push", user="developer")
    assert registry.get("/v2/acme/app/manifests/v1", headers=bearer(token)).status_code == 401


def test_changed_role_takes_effect(pushed: Registry) -> None:
    registry = pushed
    developer = registry.as_caller(basic("developer"))
    assert developer.post("/v2/acme/app/blobs/uploads/").status_code == 202
    registry.auth.projects.set_member("acme", "developer", Role.GUEST)
    registry.forget_caches()
    assert_error(developer.post("/v2/acme/app/blobs/uploads/"), 403, "DENIED")
    assert developer.get("/v2/acme/app/manifests/v1").status_code == 200


def test_disabled_user_takes_effect(pushed: Registry) -> None:
    registry = pushed
    assert registry.get("/v2/acme/app/manifests/v1", headers=basic("guest")).status_code == 200
    registry.auth.accounts.update_user("guest", disabled=True)
    registry.forget_caches()
    response = registry.get("/v2/acme/app/manifests/v1", headers=basic("guest"))
    assert response.status_code == 401
    assert registry.get("/v2/", headers=basic("guest")).status_code == 401


def test_disabled_robot_takes_effect(pushed: Registry) -> None:
    registry = pushed
    robot, secret = make_robot(registry)
    path = "/v2/acme/app/manifests/v1"
    assert registry.get(path, headers=basic(robot, secret)).status_code == 200
    registry.auth.robots.set_disabled(robot, True)
    registry.forget_caches()
    assert registry.get(path, headers=basic(robot, secret)).status_code == 401


def test_limited_guest_can_pull_by_tag_but_not_push(pushed: Registry) -> None:
    registry = pushed
    limited = registry.as_caller(basic("limitedguest"))
    response = limited.get("/v2/acme/app/manifests/v1")
    assert response.status_code == 200
    digest = response.headers["docker-content-digest"]
    assert limited.get(f"/v2/acme/app/manifests/{digest}").status_code == 200
    assert_error(limited.post("/v2/acme/app/blobs/uploads/"), 403, "DENIED")
    assert_error(limited.delete(f"/v2/acme/app/manifests/{digest}"), 403, "DENIED")


def test_robot_permissions_on_v2(pushed: Registry) -> None:
    registry = pushed
    robot, secret = make_robot(registry, actions=frozenset({"pull"}))
    client = registry.as_caller(basic(robot, secret))
    assert client.get("/v2/acme/app/manifests/v1").status_code == 200
    assert_error(client.post("/v2/acme/app/blobs/uploads/"), 403, "DENIED")
    # Robots hold rights in their project only (plus public pulls).
    assert client.get("/v2/pub/none/tags/list").status_code == 404
    registry.auth.projects.create("other")
    assert client.get("/v2/other/x/tags/list").status_code == 401


# --- credentials --------------------------------------------------------------------------


def test_wrong_basic_password_is_401(pushed: Registry) -> None:
    response = pushed.get("/v2/acme/app/manifests/v1", headers=basic("developer", "wrong-one"))
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Bearer realm=")
    # A wrong password on a public repository is still refused (not treated as anonymous).
    push_image(pushed.as_caller(basic("admin")), "pub/base", "v1")
    public = pushed.get("/v2/pub/base/manifests/v1", headers=basic("developer", "wrong-one"))
    assert public.status_code == 401
    assert pushed.get("/v2/pub/base/manifests/v1").status_code == 200


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


MALFORMED = [
    "Basic !!!",
    "Basic",
    "Basic ",
    "Bearer",
    "Bearer ",
    "Bearer not-a-jwt",
    "Bearer a.b.c",
    "Digest x",
    "Negotiate",
    f"Basic {_b64(b'no-colon-here')}",
    f"Basic {_b64(b':password-without-user')}",
    f"Basic {_b64(bytes([0xFF, 0xFE]) + b':x')}",
    f"Basic {_b64(b'admin:' + PASSWORD.encode())[:-2]}",
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_authorization_is_401(pushed: Registry, header: str) -> None:
    for path in ("/v2/", "/v2/acme/app/manifests/v1", "/v2/_catalog"):
        response = pushed.get(path, headers={"Authorization": header})
        assert_error(response, 401)
    token = pushed.get("/auth/token", headers={"Authorization": header})
    assert token.status_code == 401


@pytest.mark.parametrize("path", ["/v2/", "/auth/token"])
def test_non_ascii_basic_credentials_are_401(pushed: Registry, path: str) -> None:
    response = raw_request(
        pushed.app, "GET", path, headers=[(b"authorization", "Basic é".encode())]
    )
    assert response.status == 401, response.body


@pytest.mark.parametrize("path", ["/v2/", "/auth/token"])
def test_malformed_basic_still_gets_a_challenge(pushed: Registry, path: str) -> None:
    response = pushed.get(path, headers={"Authorization": "Basic !!!"})
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


@pytest.mark.parametrize("path", ["/v2/", "/auth/token"])
def test_very_long_username_is_401(pushed: Registry, path: str) -> None:
    response = pushed.get(path, headers=basic("u" * 300, "wrong-password"))
    assert response.status_code == 401, response.text


# --- auth.mode: none ----------------------------------------------------------------------


def test_mode_none_is_open_even_with_accounts(tmp_path: Path, database_url: str) -> None:
    with populated(tmp_path, database_url, auth={"mode": "none"}) as registry:
        assert not registry.auth.enabled()
        anonymous = registry.client
        assert anonymous.get("/v2/").status_code == 200
        manifest = push_image(anonymous, "acme/app", "v1")
        push_image(anonymous, "anywhere/else", "v1")
        assert anonymous.get("/v2/acme/app/manifests/v1").status_code == 200
        assert _catalog(anonymous) == ["acme/app", "anywhere/else"]
        # Credentials, even wrong ones, change nothing.
        wrong = anonymous.get("/v2/acme/app/manifests/v1", headers=basic("guest", "wrong-pw"))
        assert wrong.status_code == 200
        # An upload is not tied to its starter.
        location = _start(registry.as_caller(basic("developer")))
        assert registry.as_caller(basic("guest")).get(location).status_code == 204
        deleted = anonymous.delete(f"/v2/acme/app/manifests/{manifest.digest}")
        assert deleted.status_code == 202
        assert registry.get("/auth/token").status_code == 405
