"""Registry endpoints through the management API: admins only, credentials stored
encrypted and never returned, refused without an encryption key, SSRF refusals as a
clear 400, the test action against a real Distribution (with htpasswd) on loopback, and
the audit log without secrets."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from portside.egress import IPAddress
from portside.endpoints.secrets import new_key
from portside.endpoints.store import EndpointStore
from portside.metadata import schema as s
from tests.auth.conftest import Registry
from tests.mgmt.conftest import API, PROJECT_ADMIN, MakeRegistry, client_for
from tests.mgmt.helpers import assert_error, json_list, json_object
from tests.remote.peers import distribution

ENDPOINTS = f"{API}/endpoints"
SECRET = "peer-password-never-shown"


@pytest.fixture
def keyed(make_registry: MakeRegistry) -> Registry:
    return make_registry(
        secrets={"encryption_key": new_key()}, endpoints={"allow_private_targets": True}
    )


def body(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "peer", "type": "distribution", "url": url, **extra}


def test_create_read_update_delete_without_showing_the_secret(
    keyed: Registry, tmp_path: Path
) -> None:
    admin = client_for(keyed, "admin")
    with distribution(tmp_path / "d", auth=("alice", SECRET)) as peer:
        created = json_object(
            admin.post(ENDPOINTS, json=body(peer.url, username="alice", password=SECRET)), 201
        )
        assert created["has_credentials"] is True
        assert SECRET not in str(created)
        with keyed.app.ctx.db.read() as conn:
            stored = conn.execute(select(s.registry_endpoints.c.secret)).scalar_one()
        assert stored
        assert SECRET not in stored
        assert json_list(admin.get(ENDPOINTS)) == [created]
        tested = json_object(admin.post(f"{ENDPOINTS}/peer/test"))
        assert tested["ok"] is True, tested
        assert tested["auth"] == "basic"
        assert "alice" in tested["message"]
        # A wrong password: the test says the registry refused the user.
        json_object(admin.patch(f"{ENDPOINTS}/peer", json={"password": "wrong"}))
        tested = json_object(admin.post(f"{ENDPOINTS}/peer/test"))
        assert tested["ok"] is False
        assert "refused user 'alice'" in tested["message"]
        anonymous = json_object(admin.patch(f"{ENDPOINTS}/peer", json={"password": ""}))
        assert anonymous["has_credentials"] is False
        assert anonymous["username"] is None
        assert admin.delete(f"{ENDPOINTS}/peer").status_code == 204
        assert_error(admin.get(f"{ENDPOINTS}/peer"), 404, "NOT_FOUND")
    entries = [
        e for e in json_list(admin.get(f"{API}/audit-logs")) if e["resource_type"] == "endpoint"
    ]
    assert sorted(e["action"] for e in entries) == ["create", "delete", "update", "update"]
    assert SECRET not in str(entries)
    assert "wrong" not in str(entries)


def test_unreachable_and_refused_targets(keyed: Registry, make_registry: MakeRegistry) -> None:
    admin = client_for(keyed, "admin")
    from tests.durability.server import free_port

    json_object(admin.post(ENDPOINTS, json=body(f"http://127.0.0.1:{free_port()}")), 201)
    tested = json_object(admin.post(f"{ENDPOINTS}/peer/test"))
    assert tested["ok"] is False
    assert "cannot connect" in tested["message"]
    bad = admin.post(ENDPOINTS, json=body("http://127.0.0.1:5000/some/path", name="x"))
    assert_error(bad, 400, "INVALID")
    missing_url = admin.post(ENDPOINTS, json={"name": "y", "type": "distribution"})
    assert_error(missing_url, 400, "INVALID")


def test_loopback_is_refused_unless_allowed(make_registry: MakeRegistry) -> None:
    strict = make_registry(secrets={"encryption_key": new_key()})
    refused = client_for(strict, "admin").post(ENDPOINTS, json=body("http://127.0.0.1:5000"))
    assert_error(refused, 400, "INVALID")
    assert "loopback" in refused.text


def test_a_name_that_does_not_resolve_is_saved_and_the_test_says_why(
    make_registry: MakeRegistry,
) -> None:
    """Saving does not resolve the host (`.invalid` never resolves, RFC 6761): a machine
    without DNS, or a DNS failure, does not stop an endpoint being added; the test action
    names the DNS failure, and a name that later resolves to loopback is refused when
    connecting."""
    strict = make_registry(secrets={"encryption_key": new_key()})
    admin = client_for(strict, "admin")
    created = json_object(admin.post(ENDPOINTS, json=body("https://registry.example.invalid")), 201)
    assert created["url"] == "https://registry.example.invalid"
    json_object(admin.post(ENDPOINTS, json={"name": "hub", "type": "docker-hub"}), 201)
    tested = json_object(admin.post(f"{ENDPOINTS}/peer/test"))
    assert tested["ok"] is False
    assert "cannot resolve 'registry.example.invalid'" in tested["message"], tested

    def loopback(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    store = EndpointStore(strict.app.ctx.db, strict.app.ctx.settings)
    store.egress = dataclasses.replace(store.egress, resolver=loopback)
    refused = store.test(store.get("peer"))
    assert refused.ok is False
    assert "registry.example.invalid (127.0.0.1) is a loopback address" in refused.message


def test_credentials_need_an_encryption_key(make_registry: MakeRegistry) -> None:
    plain = make_registry(endpoints={"allow_private_targets": True})
    admin = client_for(plain, "admin")
    refused = admin.post(
        ENDPOINTS, json=body("http://127.0.0.1:5000", username="alice", password=SECRET)
    )
    assert_error(refused, 400, "INVALID")
    assert "secrets.encryption_key" in refused.text
    # Anonymous endpoints need no key.
    json_object(admin.post(ENDPOINTS, json=body("http://127.0.0.1:5000")), 201)


@pytest.mark.parametrize("user", [PROJECT_ADMIN, None])
def test_only_admins(keyed: Registry, user: str | None) -> None:
    caller = client_for(keyed, user)
    expected = 403 if user else 401
    assert caller.get(ENDPOINTS).status_code == expected
    assert caller.post(ENDPOINTS, json=body("http://127.0.0.1:1")).status_code == expected
