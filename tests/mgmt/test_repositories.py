"""Repositories, artifacts and tags through the management API, after pushing an image,
a two-platform index and an artifact that refers to the image over /v2. Sizes are worked
out here from the bytes pushed."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from portside.events.outbox import Actor
from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    make_image,
    push_image,
    push_manifest,
    sha256,
)
from tests.auth.conftest import Registry
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    MakeRegistry,
    client_for,
)
from tests.mgmt.helpers import (
    SBOM_TYPE,
    Content,
    assert_error,
    json_list,
    json_object,
    links,
    push_content,
    total_count,
)

REPOSITORY_FIELDS = {
    "name",
    "project",
    "artifact_count",
    "tag_count",
    "size",
    "pushed_at",
    "pulled_at",
}
ARTIFACT_FIELDS = {
    "digest",
    "media_type",
    "artifact_type",
    "kind",
    "subject",
    "size",
    "tags",
    "platforms",
    "pushed_at",
    "pulled_at",
    "signature",  # null unless ?grouped=true (tests/signatures/test_grouping.py)
    "attached",
    "vulnerabilities",  # the latest scan's summary, or null (tests/scans)
}
REPO = "acme/app"
ARTIFACTS = f"{API}/repositories/{REPO}/-/artifacts"


@pytest.fixture
def content(registry: Registry) -> Content:
    return push_content(client_for(registry, "admin"), REPO)


def by_digest(artifacts: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {a["digest"]: a for a in artifacts}


# -- repositories -------------------------------------------------------------------------------


def test_repository_summary(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    listed = json_list(admin.get(f"{API}/repositories"))
    assert [r["name"] for r in listed] == [REPO]
    repository = json_object(admin.get(f"{API}/repositories/{REPO}"))
    assert repository == listed[0]
    assert set(repository) == REPOSITORY_FIELDS
    assert repository["project"] == "acme"
    assert repository["artifact_count"] == 5  # image, index, its two children, the SBOM
    assert repository["tag_count"] == 2
    assert repository["size"] == content.repository_size
    assert repository["pulled_at"] is None
    assert datetime.fromisoformat(repository["pushed_at"]).tzinfo is not None


def _sized_image(registry: Registry, repository: str, layer_bytes: int) -> int:
    """Push an image with one layer of this many bytes; returns the repository's size."""
    client = client_for(registry, "admin")
    config = canonical({"architecture": "amd64", "os": "linux", "repository": repository})
    layer = repository.encode() * (layer_bytes // len(repository) + 1)
    push_image(client, repository, "latest", config=config, layers=[layer])
    return len(config) + len(layer)


@pytest.fixture
def three_repositories(registry: Registry) -> dict[str, int]:
    """acme/zeta (big, pushed first), acme/alpha (small), pub/mid (in between, last)."""
    return {
        name: _sized_image(registry, name, size)
        for name, size in (("acme/zeta", 5000), ("acme/alpha", 10), ("pub/mid", 1000))
    }


REPOSITORY_ORDERS: list[tuple[str | None, list[str]]] = [
    (None, ["acme/alpha", "acme/zeta", "pub/mid"]),
    ("name", ["acme/alpha", "acme/zeta", "pub/mid"]),
    ("-name", ["pub/mid", "acme/zeta", "acme/alpha"]),
    ("pushed_at", ["acme/zeta", "acme/alpha", "pub/mid"]),
    ("-pushed_at", ["pub/mid", "acme/alpha", "acme/zeta"]),
    ("size", ["acme/alpha", "pub/mid", "acme/zeta"]),
    ("-size", ["acme/zeta", "pub/mid", "acme/alpha"]),
    ("artifact_count", ["acme/alpha", "acme/zeta", "pub/mid"]),  # all 1: then by name
    ("-pulled_at", ["acme/alpha", "acme/zeta", "pub/mid"]),  # none pulled: then by name
]


def test_sort_repositories(registry: Registry, three_repositories: dict[str, int]) -> None:
    admin = client_for(registry, "admin")
    for sort, expected in REPOSITORY_ORDERS:
        params = {"sort": sort} if sort else {}
        repositories = json_list(admin.get(f"{API}/repositories", params=params))
        assert [r["name"] for r in repositories] == expected, sort
        assert {r["name"]: r["size"] for r in repositories} == three_repositories


def test_invalid_sort_is_400(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for sort in ("bogus", "-", "--name", "name,size", "NAME", "tag_count", "+name"):
        response = admin.get(f"{API}/repositories", params={"sort": sort})
        assert response.status_code == 400, sort
        entry = assert_error(response, 400, "INVALID")
        assert "pushed_at" in entry["message"]  # names what may be sorted by
        assert_error(admin.get(ARTIFACTS, params={"sort": sort}), 400, "INVALID")


def test_search_and_page_repositories(
    registry: Registry, three_repositories: dict[str, int]
) -> None:
    admin = client_for(registry, "admin")
    assert [
        r["name"] for r in json_list(admin.get(f"{API}/repositories", params={"q": "alp"}))
    ] == ["acme/alpha"]
    acme = admin.get(f"{API}/repositories", params={"q": "acme/"})
    assert [r["name"] for r in json_list(acme)] == ["acme/alpha", "acme/zeta"]
    assert total_count(acme) == 2
    assert json_list(admin.get(f"{API}/repositories", params={"q": "%"})) == []
    in_project = admin.get(f"{API}/repositories", params={"project": "pub"})
    assert [r["name"] for r in json_list(in_project)] == ["pub/mid"]

    first = admin.get(f"{API}/repositories", params={"page_size": 1, "sort": "-size"})
    assert [r["name"] for r in json_list(first)] == ["acme/zeta"]
    assert total_count(first) == 3
    next_url = links(first)["next"]
    assert parse_qs(urlsplit(next_url).query) == {
        "page": ["2"],
        "page_size": ["1"],
        "sort": ["-size"],
    }
    second = admin.get(next_url)
    assert [r["name"] for r in json_list(second)] == ["pub/mid"]
    assert set(links(second)) == {"next", "prev"}
    third = admin.get(links(second)["next"])
    assert [r["name"] for r in json_list(third)] == ["acme/alpha"]
    assert set(links(third)) == {"prev"}


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, ["pub/mid"]),
        ("outsider", ["pub/mid"]),
        (LIMITED_GUEST, ["pub/mid"]),  # sees the project, may not list its repositories
        (GUEST, ["acme/alpha", "acme/zeta", "pub/mid"]),
        (DEVELOPER, ["acme/alpha", "acme/zeta", "pub/mid"]),
    ],
)
def test_repository_list_shows_what_the_caller_may_list(
    registry: Registry, three_repositories: dict[str, int], user: str | None, expected: list[str]
) -> None:
    response = client_for(registry, user).get(f"{API}/repositories")
    assert [r["name"] for r in json_list(response)] == expected
    assert total_count(response) == len(expected)


def test_project_filter_checks_access(registry: Registry, content: Content) -> None:
    assert_error(
        client_for(registry, "outsider").get(f"{API}/repositories", params={"project": "acme"}),
        404,
    )
    assert_error(
        client_for(registry, LIMITED_GUEST).get(f"{API}/repositories", params={"project": "acme"}),
        403,
    )
    assert_error(
        client_for(registry, "admin").get(f"{API}/repositories", params={"project": "nothing"}),
        404,
    )


def test_missing_repository_is_404(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    for path in ("acme/nothing", "nothing/app", "acme", "Bad/Name", "acme/app/-/x"):
        assert_error(admin.get(f"{API}/repositories/{path}"), 404, "NOT_FOUND")
    assert_error(admin.get(f"{API}/repositories/acme/nothing/-/artifacts"), 404, "NOT_FOUND")


# -- artifacts ----------------------------------------------------------------------------------


def test_artifact_list_describes_each_kind(registry: Registry, content: Content) -> None:
    response = client_for(registry, GUEST).get(ARTIFACTS)
    artifacts = json_list(response)
    assert total_count(response) == 5
    assert all(set(a) == ARTIFACT_FIELDS for a in artifacts)
    # Newest first by default: the SBOM was pushed last, the image first.
    assert artifacts[0]["digest"] == content.artifact.digest
    assert artifacts[-1]["digest"] == content.image.digest
    found = by_digest(artifacts)

    image = found[content.image.digest]
    assert image["kind"] == "image"
    assert image["media_type"] == OCI_MANIFEST
    assert image["tags"] == ["v1"]
    assert image["size"] == content.image.size
    assert image["platforms"] == [{"os": "linux", "architecture": "amd64", "variant": None}]
    assert image["subject"] is None
    assert image["pulled_at"] is None

    index = found[content.index.digest]
    assert index["kind"] == "index"
    assert index["media_type"] == OCI_INDEX
    assert index["tags"] == ["multi"]
    assert index["size"] == content.index_size
    assert index["platforms"] == [
        {"os": "linux", "architecture": "amd64", "variant": None},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    ]

    for child in content.children:
        entry = found[child.digest]
        assert entry["kind"] == "image"
        assert entry["tags"] == []
        assert entry["size"] == child.size

    arm = found[content.children[1].digest]
    assert arm["platforms"] == [{"os": "linux", "architecture": "arm64", "variant": "v8"}]

    sbom = found[content.artifact.digest]
    assert sbom["kind"] == "artifact"
    assert sbom["artifact_type"] == SBOM_TYPE
    assert sbom["subject"] == content.image.digest
    assert sbom["tags"] == []
    assert sbom["size"] == content.artifact_size
    assert sbom["platforms"] == []


def test_artifact_list_filters_sorts_and_pages(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    tagged = json_list(admin.get(ARTIFACTS, params={"tag": "mul"}))
    assert [a["digest"] for a in tagged] == [content.index.digest]
    assert json_list(admin.get(ARTIFACTS, params={"tag": "nothing"})) == []

    by_size = json_list(admin.get(ARTIFACTS, params={"sort": "-size"}))
    sizes = [a["size"] for a in by_size]
    assert sizes == sorted(sizes, reverse=True)
    assert by_size[0]["digest"] == content.index.digest  # it counts its children
    oldest_first = json_list(admin.get(ARTIFACTS, params={"sort": "pushed_at"}))
    assert oldest_first[0]["digest"] == content.image.digest
    by_name = json_list(admin.get(ARTIFACTS, params={"sort": "digest"}))
    assert [a["digest"] for a in by_name] == sorted(a["digest"] for a in by_name)

    page = admin.get(ARTIFACTS, params={"page": 2, "page_size": 2, "sort": "digest"})
    assert [a["digest"] for a in json_list(page)] == [a["digest"] for a in by_name[2:4]]
    assert total_count(page) == 5
    assert set(links(page)) == {"next", "prev"}


def test_get_image_by_tag_and_by_digest(registry: Registry, content: Content) -> None:
    client = client_for(registry, GUEST)
    by_tag = json_object(client.get(f"{ARTIFACTS}/v1"))
    by_digest_ = json_object(client.get(f"{ARTIFACTS}/{content.image.digest}"))
    assert by_tag == by_digest_
    assert set(by_tag) == ARTIFACT_FIELDS | {"manifest", "config", "referrers"}
    assert by_tag["digest"] == content.image.digest
    assert by_tag["kind"] == "image"
    assert by_tag["size"] == content.image.size
    assert by_tag["tags"] == ["v1"]
    assert by_tag["manifest"] == content.image.manifest.document
    assert by_tag["config"] == json.loads(content.image.config)
    assert by_tag["referrers"] == [
        {
            "digest": content.artifact.digest,
            "media_type": OCI_MANIFEST,
            "artifact_type": SBOM_TYPE,
            "size": content.artifact.size,
        }
    ]


def test_get_index_and_artifact(registry: Registry, content: Content) -> None:
    client = client_for(registry, GUEST)
    index = json_object(client.get(f"{ARTIFACTS}/multi"))
    assert index["kind"] == "index"
    assert index["manifest"] == content.index.document
    assert index["config"] is None
    assert index["referrers"] == []
    assert [p["architecture"] for p in index["platforms"]] == ["amd64", "arm64"]
    sbom = json_object(client.get(f"{ARTIFACTS}/{content.artifact.digest}"))
    assert sbom["kind"] == "artifact"
    assert sbom["subject"] == content.image.digest
    assert sbom["manifest"] == content.artifact.document
    assert sbom["config"] is None
    assert sbom["referrers"] == []


def test_reading_through_the_api_is_not_a_pull(registry: Registry, content: Content) -> None:
    client = client_for(registry, "admin")
    assert client.get(f"{ARTIFACTS}/v1").status_code == 200
    assert json_object(client.get(f"{ARTIFACTS}/v1"))["pulled_at"] is None
    pulled = client.get(f"/v2/{REPO}/manifests/v1", headers={"accept": OCI_MANIFEST})
    assert pulled.status_code == 200
    assert json_object(client.get(f"{ARTIFACTS}/v1"))["pulled_at"] is not None
    assert json_object(client.get(f"{API}/repositories/{REPO}"))["pulled_at"] is not None


def test_missing_artifact_is_404(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    for reference in (
        "nothing",
        "sha256:" + "0" * 64,
        "sha256:abc",
        "UPPER!",
        "-x",
        "sha512:" + "0" * 128,
        "md5:00",
    ):
        response = admin.get(f"{ARTIFACTS}/{reference}")
        assert response.status_code == 404, reference
        assert_error(response, 404, "NOT_FOUND")


def test_get_artifact_in_a_repository_with_over_1000_artifacts(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    base = make_image(admin, "acme/big").document
    digests = []
    for number in range(1001):
        body = canonical({**base, "annotations": {"n": str(number)}})
        digests.append(sha256(body))
        registry.app.ctx.manifests.put("acme/big", digests[-1], body, OCI_MANIFEST, Actor("tests"))
    oldest = json_list(
        admin.get(f"{API}/repositories/acme/big/-/artifacts", params={"sort": "pushed_at"})
    )[0]
    assert oldest["digest"] == digests[0]
    response = admin.get(f"{API}/repositories/acme/big/-/artifacts/{digests[0]}")
    assert response.status_code == 200, response.text


# -- tags ---------------------------------------------------------------------------------------


def test_add_a_tag_then_pull_it(registry: Registry, content: Content) -> None:
    developer = client_for(registry, DEVELOPER)
    response = developer.post(f"{ARTIFACTS}/{content.image.digest}/tags", json={"name": "stable"})
    assert response.status_code == 201, response.text
    image = json_object(developer.get(f"{ARTIFACTS}/stable"))
    assert image["digest"] == content.image.digest
    assert image["tags"] == ["stable", "v1"]
    pulled = developer.get(f"/v2/{REPO}/manifests/stable", headers={"accept": OCI_MANIFEST})
    assert pulled.status_code == 200, pulled.text
    assert pulled.headers["docker-content-digest"] == content.image.digest
    assert pulled.content == content.image.manifest.body
    tags = developer.get(f"/v2/{REPO}/tags/list").json()["tags"]
    assert sorted(tags) == ["multi", "stable", "v1"]


def test_adding_an_existing_tag_moves_it(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    moved = admin.post(f"{ARTIFACTS}/{content.index.digest}/tags", json={"name": "v1"})
    assert moved.status_code == 201, moved.text
    assert json_object(admin.get(f"{ARTIFACTS}/v1"))["digest"] == content.index.digest
    assert json_object(admin.get(f"{ARTIFACTS}/{content.image.digest}"))["tags"] == []
    pulled = admin.get(f"/v2/{REPO}/manifests/v1", headers={"accept": OCI_INDEX})
    assert pulled.headers["docker-content-digest"] == content.index.digest


def test_add_tag_errors(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    digest = content.image.digest
    assert_error(admin.post(f"{ARTIFACTS}/{digest}/tags", json={"name": "-bad"}), 400)
    assert_error(admin.post(f"{ARTIFACTS}/{digest}/tags", json={"name": "a" * 129}), 400)
    assert_error(admin.post(f"{ARTIFACTS}/{digest}/tags", json={}), 400, "INVALID")
    unknown = admin.post(f"{ARTIFACTS}/sha256:{'0' * 64}/tags", json={"name": "x"})
    assert unknown.status_code == 404
    missing_repo = admin.post(
        f"{API}/repositories/acme/nothing/-/artifacts/{digest}/tags", json={"name": "x"}
    )
    assert missing_repo.status_code == 404
    assert json_object(admin.get(f"{ARTIFACTS}/{digest}"))["tags"] == ["v1"]


def test_delete_a_tag(registry: Registry, content: Content) -> None:
    maintainer = client_for(registry, MAINTAINER)
    assert maintainer.delete(f"{API}/repositories/{REPO}/-/tags/v1").status_code == 204
    assert maintainer.get(f"/v2/{REPO}/manifests/v1").status_code == 404
    # The artifact stays, untagged.
    image = json_object(maintainer.get(f"{ARTIFACTS}/{content.image.digest}"))
    assert image["tags"] == []
    assert_error(maintainer.delete(f"{API}/repositories/{REPO}/-/tags/v1"), 404)
    assert_error(maintainer.delete(f"{API}/repositories/{REPO}/-/tags/{content.index.digest}"), 404)
    assert json_object(maintainer.get(f"{ARTIFACTS}/multi"))["digest"] == content.index.digest


# -- deletes ------------------------------------------------------------------------------------


def test_delete_an_artifact_by_digest(registry: Registry, content: Content) -> None:
    maintainer = client_for(registry, MAINTAINER)
    deleted = maintainer.delete(f"{ARTIFACTS}/{content.artifact.digest}")
    assert deleted.status_code == 204, deleted.text
    assert_error(maintainer.get(f"{ARTIFACTS}/{content.artifact.digest}"), 404)
    assert json_object(maintainer.get(f"{ARTIFACTS}/v1"))["referrers"] == []
    assert total_count(maintainer.get(ARTIFACTS)) == 4
    # Deleting the image removes its tag too.
    assert maintainer.delete(f"{ARTIFACTS}/{content.image.digest}").status_code == 204
    assert maintainer.get(f"/v2/{REPO}/manifests/v1").status_code == 404
    assert maintainer.delete(f"{ARTIFACTS}/{content.image.digest}").status_code == 404


def test_artifacts_are_deleted_by_digest_only(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    assert_error(admin.delete(f"{ARTIFACTS}/v1"), 404, "NOT_FOUND")
    assert json_object(admin.get(f"{ARTIFACTS}/v1"))["digest"] == content.image.digest


def test_deleting_an_index_child_is_refused(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    response = admin.delete(f"{ARTIFACTS}/{content.children[0].digest}")
    assert 400 <= response.status_code < 500, response.text
    assert admin.get(f"{ARTIFACTS}/{content.children[0].digest}").status_code == 200


def test_delete_a_repository(registry: Registry, content: Content) -> None:
    maintainer = client_for(registry, MAINTAINER)
    assert maintainer.delete(f"{API}/repositories/{REPO}").status_code == 204
    assert_error(maintainer.get(f"{API}/repositories/{REPO}"), 404, "NOT_FOUND")
    assert_error(maintainer.get(ARTIFACTS), 404, "NOT_FOUND")
    assert json_list(maintainer.get(f"{API}/repositories")) == []
    tags = maintainer.get(f"/v2/{REPO}/tags/list")
    assert tags.status_code == 404
    assert [e["code"] for e in tags.json()["errors"]] == ["NAME_UNKNOWN"]
    assert_error(maintainer.delete(f"{API}/repositories/{REPO}"), 404, "NOT_FOUND")
    # The name can be pushed again from scratch.
    push_image(client_for(registry, "admin"), REPO, "again")
    assert json_object(maintainer.get(f"{API}/repositories/{REPO}"))["artifact_count"] == 1


def test_deletes_honour_delete_enabled(make_registry: MakeRegistry) -> None:
    registry = make_registry(registry={"delete_enabled": False})
    admin = client_for(registry, "admin")
    pushed = push_image(admin, REPO, "v1")
    assert admin.delete(f"/v2/{REPO}/manifests/{pushed.digest}").status_code == 405
    responses = [
        admin.delete(f"{API}/repositories/{REPO}/-/tags/v1"),
        admin.delete(f"{ARTIFACTS}/{pushed.digest}"),
        admin.delete(f"{API}/repositories/{REPO}"),
    ]
    assert [r.status_code for r in responses] == [405, 405, 405]
    assert admin.get(f"/v2/{REPO}/manifests/v1").status_code == 200


# -- who may do what ----------------------------------------------------------------------------


@pytest.mark.parametrize("user", [GUEST, LIMITED_GUEST, DEVELOPER])
def test_deletes_need_the_delete_right(registry: Registry, content: Content, user: str) -> None:
    client = client_for(registry, user)
    assert_error(client.delete(f"{API}/repositories/{REPO}"), 403, "FORBIDDEN")
    assert_error(client.delete(f"{ARTIFACTS}/{content.artifact.digest}"), 403, "FORBIDDEN")
    assert_error(client.delete(f"{API}/repositories/{REPO}/-/tags/v1"), 403, "FORBIDDEN")
    assert total_count(client_for(registry, "admin").get(ARTIFACTS)) == 5


@pytest.mark.parametrize("user", [GUEST, LIMITED_GUEST])
def test_tagging_needs_the_push_right(registry: Registry, content: Content, user: str) -> None:
    response = client_for(registry, user).post(
        f"{ARTIFACTS}/{content.image.digest}/tags", json={"name": "mine"}
    )
    assert_error(response, 403, "FORBIDDEN")


@pytest.mark.parametrize("user", [PROJECT_ADMIN, MAINTAINER])
def test_project_admins_and_maintainers_delete(
    registry: Registry, content: Content, user: str
) -> None:
    client = client_for(registry, user)
    assert client.delete(f"{API}/repositories/{REPO}/-/tags/multi").status_code == 204
    assert client.delete(f"{API}/repositories/{REPO}").status_code == 204


def test_limited_guest_reads_a_repository_by_name(registry: Registry, content: Content) -> None:
    client = client_for(registry, LIMITED_GUEST)
    assert json_object(client.get(f"{API}/repositories/{REPO}"))["name"] == REPO
    assert json_object(client.get(f"{ARTIFACTS}/v1"))["digest"] == content.image.digest


def _outsider_paths(digest: str, repository: str) -> list[tuple[str, str, dict[str, str] | None]]:
    base = f"{API}/repositories/{repository}"
    return [
        ("GET", base, None),
        ("GET", f"{base}/-/artifacts", None),
        ("GET", f"{base}/-/artifacts/v1", None),
        ("GET", f"{base}/-/artifacts/{digest}", None),
        ("POST", f"{base}/-/artifacts/{digest}/tags", {"name": "x"}),
        ("DELETE", f"{base}/-/tags/v1", None),
        ("DELETE", f"{base}/-/artifacts/{digest}", None),
        ("DELETE", base, None),
    ]


@pytest.mark.parametrize("user", [None, "outsider"])
def test_private_repository_is_indistinguishable_from_a_missing_one(
    registry: Registry, content: Content, user: str | None
) -> None:
    client = client_for(registry, user)
    digest = content.image.digest
    for (method, path, body), (_, missing_path, _) in zip(
        _outsider_paths(digest, REPO), _outsider_paths(digest, "acme/missing"), strict=True
    ):
        hidden = client.request(method, path, json=body)
        missing = client.request(method, missing_path, json=body)
        assert_error(hidden, 404, "NOT_FOUND")
        assert_error(missing, 404, "NOT_FOUND")
        assert hidden.text.replace(REPO, "X") == missing.text.replace("acme/missing", "X"), (
            method,
            path,
        )
    assert total_count(client_for(registry, "admin").get(ARTIFACTS)) == 5


def test_anonymous_reads_public_repositories_but_changes_nothing(registry: Registry) -> None:
    pushed = push_content(client_for(registry, "admin"), "pub/tool")
    anonymous = client_for(registry)
    assert json_object(anonymous.get(f"{API}/repositories/pub/tool"))["artifact_count"] == 5
    artifact = json_object(anonymous.get(f"{API}/repositories/pub/tool/-/artifacts/v1"))
    assert artifact["digest"] == pushed.image.digest
    base = f"{API}/repositories/pub/tool"
    assert_error(anonymous.delete(base), 401, "UNAUTHORIZED")
    assert_error(anonymous.delete(f"{base}/-/tags/v1"), 401, "UNAUTHORIZED")
    assert_error(anonymous.delete(f"{base}/-/artifacts/{pushed.image.digest}"), 401)
    assert_error(
        anonymous.post(f"{base}/-/artifacts/{pushed.image.digest}/tags", json={"name": "x"}), 401
    )
    outsider = client_for(registry, "outsider")
    assert_error(outsider.delete(base), 403, "FORBIDDEN")


def test_robot_rights_apply_to_the_management_api(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    robot = json_object(
        admin.post(f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}),
        201,
    )
    client = client_for(registry, robot["name"], robot["secret"])
    assert json_object(client.get(f"{ARTIFACTS}/v1"))["digest"] == content.image.digest
    assert_error(client.delete(f"{API}/repositories/{REPO}/-/tags/v1"), 403, "FORBIDDEN")
    assert_error(client.post(f"{ARTIFACTS}/{content.image.digest}/tags", json={"name": "x"}), 403)
    pusher = json_object(
        admin.post(
            f"{API}/projects/acme/robots",
            json={"name": "cd", "permissions": ["pull", "push", "delete"]},
        ),
        201,
    )
    client = client_for(registry, pusher["name"], pusher["secret"])
    assert client.post(f"{ARTIFACTS}/{content.image.digest}/tags", json={"name": "x"}).is_success
    assert client.delete(f"{API}/repositories/{REPO}/-/tags/x").status_code == 204


def test_index_pushed_in_another_repository_has_its_own_sizes(registry: Registry) -> None:
    """Two repositories with the same content: each counts its own copy."""
    admin = client_for(registry, "admin")
    first = push_content(admin, "acme/one", seed="same")
    second = push_content(admin, "acme/two", seed="same")
    assert first.index.digest == second.index.digest
    for repository in ("acme/one", "acme/two"):
        index = json_object(admin.get(f"{API}/repositories/{repository}/-/artifacts/multi"))
        assert index["size"] == first.index_size
        summary = json_object(admin.get(f"{API}/repositories/{repository}"))
        assert summary["size"] == first.repository_size


def test_docker_manifest_list_is_an_index(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    docker_list = "application/vnd.docker.distribution.manifest.list.v2+json"
    docker_manifest = "application/vnd.docker.distribution.manifest.v2+json"
    child = make_image(admin, "acme/docker", media_type=docker_manifest, seed="d")
    push_manifest(admin, "acme/docker", child.digest, child)
    from tests.api.helpers import Manifest

    document = {
        "schemaVersion": 2,
        "mediaType": docker_list,
        "manifests": [child.descriptor(platform={"os": "linux", "architecture": "s390x"})],
    }
    manifest_list = Manifest(canonical(document), docker_list)
    push_manifest(admin, "acme/docker", "latest", manifest_list)
    found = by_digest(json_list(admin.get(f"{API}/repositories/acme/docker/-/artifacts")))
    assert found[manifest_list.digest]["kind"] == "index"
    assert found[manifest_list.digest]["platforms"] == [
        {"os": "linux", "architecture": "s390x", "variant": None}
    ]
    assert found[child.digest]["kind"] == "image"
