"""The Docker token flow end to end in-process: challenge, token, access."""

from __future__ import annotations

from tests.api.helpers import push_image
from tests.auth.conftest import Registry, basic, bearer


def test_base_endpoint_challenges_anonymous_callers(registry: Registry) -> None:
    response = registry.get("/v2/")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="http://127.0.0.1:5000/auth/token"')
    assert 'service="portside"' in challenge


def test_token_for_admin_grants_what_was_asked(registry: Registry) -> None:
    token = registry.token("repository:acme/app:pull,push", user="admin")
    assert registry.get("/v2/", headers=bearer(token)).status_code == 200
    push_image(registry.as_caller(bearer(token)), "acme/app", "v1")
    response = registry.get("/v2/acme/app/manifests/v1", headers=bearer(token))
    assert response.status_code == 200


def test_private_repository_looks_missing_to_outsiders(registry: Registry) -> None:
    admin = registry.token("repository:acme/app:pull,push", user="admin")
    push_image(registry.as_caller(bearer(admin)), "acme/app", "v1")
    for headers in ({}, bearer(registry.token("repository:acme/app:pull"))):
        existing = registry.get("/v2/acme/app/manifests/v1", headers=headers)
        missing = registry.get("/v2/acme/nothing/manifests/v1", headers=headers)
        assert existing.status_code == missing.status_code == 401
        assert existing.json()["errors"][0]["code"] == "UNAUTHORIZED"
        for response, name in ((existing, "acme/app"), (missing, "acme/nothing")):
            assert response.headers["www-authenticate"].count(f"repository:{name}:pull") == 1
        assert existing.json()["errors"][0]["detail"][0]["Action"] == "pull"
        strip = {"x-request-id", "www-authenticate", "content-length"}
        assert {k: v for k, v in existing.headers.items() if k not in strip} == {
            k: v for k, v in missing.headers.items() if k not in strip
        }


def test_basic_credentials_work_directly_on_v2(registry: Registry) -> None:
    push_image(registry.as_caller(basic("developer")), "acme/app", "v1")
    response = registry.get("/v2/acme/app/tags/list", headers=basic("guest"))
    assert response.json()["tags"] == ["v1"]


def test_guest_may_pull_but_not_push(registry: Registry) -> None:
    response = registry.client.post("/v2/acme/app/blobs/uploads/", headers=basic("guest"))
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "DENIED"
