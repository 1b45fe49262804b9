"""Storage usage through the management API: a project's usage (and per repository) for
whoever may see the project, the registry's for system administrators, and `used_bytes`
in the project list and detail."""

from __future__ import annotations

import pytest

from tests.api.helpers import make_image, push_blob, push_manifest, sha256
from tests.auth.conftest import Registry
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    client_for,
)
from tests.mgmt.helpers import assert_error, json_list, json_object

CONFIG = b'{"architecture":"amd64","os":"linux"}'
SHARED = b"a base layer both projects use" * 50
OWN = b"acme's own layer" * 20
PUBLIC_ONLY = b"only in pub" * 10


def populate(registry: Registry) -> dict[str, int]:
    """acme/app: an image (config, SHARED, OWN); acme/tool: SHARED only; pub/app: SHARED
    and PUBLIC_ONLY; an unreferenced blob. Returns the manifest sizes."""
    admin = client_for(registry, "admin")
    image = make_image(admin, "acme/app", config=CONFIG, layers=[SHARED, OWN])
    push_manifest(admin, "acme/app", "v1", image)
    push_blob(admin, "acme/tool", SHARED)
    push_blob(admin, "pub/app", SHARED)
    push_blob(admin, "pub/app", PUBLIC_ONLY)
    orphan = push_blob(admin, "pub/gone", b"orphan")
    assert admin.delete(f"/v2/pub/gone/blobs/{orphan}").status_code == 202
    registry.auth.projects.update("acme", quota_bytes=1_000_000)
    return {"acme/app": len(image.body)}


def test_project_usage(registry: Registry) -> None:
    manifests = populate(registry)
    body = json_object(client_for(registry, "admin").get(f"{API}/projects/acme/usage"))
    acme_manifest = manifests["acme/app"]
    assert body == {
        "name": "acme",
        "quota_bytes": 1_000_000,
        "used_bytes": len(CONFIG) + len(SHARED) + len(OWN) + acme_manifest,
        "unique_bytes": len(CONFIG) + len(OWN) + acme_manifest,
        "shared_bytes": len(SHARED),
        "manifest_bytes": acme_manifest,
        "repository_count": 2,
        "repositories": None,
    }
    detailed = json_object(
        client_for(registry, "admin").get(f"{API}/projects/acme/usage?repositories=true")
    )
    assert detailed["repositories"] == [
        {
            "name": "acme/app",
            "used_bytes": len(CONFIG) + len(SHARED) + len(OWN) + acme_manifest,
            "unique_bytes": len(CONFIG) + len(OWN) + acme_manifest,
            "shared_bytes": len(SHARED),
            "manifest_bytes": acme_manifest,
        },
        {
            "name": "acme/tool",
            "used_bytes": len(SHARED),
            "unique_bytes": 0,
            "shared_bytes": len(SHARED),
            "manifest_bytes": 0,
        },
    ]
    assert detailed | {"repositories": None} == body


@pytest.mark.parametrize(
    ("user", "project", "status", "with_repositories"),
    [
        (None, "acme", 404, 404),
        ("outsider", "acme", 404, 404),
        (GUEST, "acme", 200, 200),
        (DEVELOPER, "acme", 200, 200),
        (MAINTAINER, "acme", 200, 200),
        (PROJECT_ADMIN, "acme", 200, 200),
        # A limited guest sees the project, not its repositories.
        (LIMITED_GUEST, "acme", 200, 403),
        (None, "pub", 200, 200),
        ("outsider", "pub", 200, 200),
        ("admin", "nothing", 404, 404),
        (GUEST, "nothing", 404, 404),
    ],
)
def test_project_usage_visibility(
    registry: Registry, user: str | None, project: str, status: int, with_repositories: int
) -> None:
    populate(registry)
    client = client_for(registry, user)
    for query, expected in (("", status), ("?repositories=true", with_repositories)):
        response = client.get(f"{API}/projects/{project}/usage{query}")
        if expected == 200:
            assert json_object(response)["name"] == project
        else:
            codes = {403: "FORBIDDEN", 404: "NOT_FOUND"}
            assert_error(response, expected, codes[expected])


def test_registry_usage_for_admins(registry: Registry) -> None:
    manifests = populate(registry)
    body = json_object(client_for(registry, "admin").get(f"{API}/usage"))
    blobs = len(CONFIG) + len(SHARED) + len(OWN) + len(PUBLIC_ONLY) + len(b"orphan")
    assert body["blob_bytes"] == blobs
    assert body["manifest_bytes"] == manifests["acme/app"]
    assert body["stored_bytes"] == blobs + manifests["acme/app"]
    assert body["unreferenced_bytes"] == len(b"orphan")
    projects = {p["name"]: p for p in body["projects"]}
    assert sorted(projects) == ["acme", "pub"]
    assert projects["pub"]["used_bytes"] == len(SHARED) + len(PUBLIC_ONLY)
    assert projects["pub"]["shared_bytes"] == len(SHARED)
    assert projects["pub"]["quota_bytes"] is None
    acme = json_object(client_for(registry, "admin").get(f"{API}/projects/acme/usage"))
    assert projects["acme"] == acme
    # SHARED is stored once but used by both projects.
    assert body["projects_used_bytes"] == body["stored_bytes"] - len(b"orphan") + len(SHARED)


@pytest.mark.parametrize(("user", "status"), [(None, 401), (PROJECT_ADMIN, 403), (GUEST, 403)])
def test_registry_usage_is_for_admins_only(
    registry: Registry, user: str | None, status: int
) -> None:
    response = client_for(registry, user).get(f"{API}/usage")
    assert_error(response, status)


def test_project_list_and_detail_show_used_bytes(registry: Registry) -> None:
    populate(registry)
    admin = client_for(registry, "admin")
    usage = json_object(admin.get(f"{API}/projects/acme/usage"))
    listed = {p["name"]: p for p in json_list(admin.get(f"{API}/projects"))}
    assert listed["acme"]["used_bytes"] == usage["used_bytes"]
    assert listed["acme"]["quota_bytes"] == 1_000_000
    assert listed["pub"]["used_bytes"] == len(SHARED) + len(PUBLIC_ONLY)
    assert json_object(admin.get(f"{API}/projects/acme"))["used_bytes"] == usage["used_bytes"]
    created = admin.post(f"{API}/projects", json={"name": "fresh", "quota_bytes": 10})
    assert json_object(created, 201)["used_bytes"] == 0
    patched = admin.patch(f"{API}/projects/acme", json={"quota_bytes": 5})
    assert json_object(patched)["used_bytes"] == usage["used_bytes"]
    # Over quota now: a new blob is refused, the content stays.
    response = admin.post(f"/v2/acme/app/blobs/uploads/?digest={sha256(b'more')}", content=b"more")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "DENIED"
    assert json_object(admin.get(f"{API}/projects/acme"))["used_bytes"] == usage["used_bytes"]
