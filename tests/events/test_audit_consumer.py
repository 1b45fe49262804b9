"""The audit log as a consumer of events: a change has one shape whoever makes it (the
drift this fixes: the CLI and the API recorded the same project update differently), a
rolled-back change leaves nothing, two processes catching up at once never write a row
twice, and a crash in the handler leaves the cursor where it was."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, func, select

from portside.auth.roles import Role
from portside.cli import main
from portside.events import outbox
from portside.events.audit import CONSUMER, AuditEntry, AuditLog, write_rows
from portside.events.outbox import Actor, Consumer, Event
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.auth.conftest import Registry, populated
from tests.mgmt.conftest import API, client_for

ALICE = Actor("alice", "10.0.0.1")


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url) as built:
        yield built


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url))
    yield database
    database.engine.dispose()


def cli(tmp_path: Path, database_url: str, *args: str) -> None:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = database_url
    result = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path / "data")], env=env)
    assert result.exit_code == 0, result.output


def last(registry: Registry, type_: str, resource: str) -> Event:
    events = outbox.recent(registry.app.ctx.db, limit=1000)
    return [e for e in events if e.type == type_ and e.resource == resource][-1]


def entry(registry: Registry, action: str, resource: str) -> AuditEntry:
    entries, _ = registry.app.ctx.audit.find(action=action, resource=resource)
    [found] = [e for e in entries if e.resource == resource]
    return found


def shape(item: Event | AuditEntry) -> dict[str, Any]:
    """What must not depend on who made the change (the names of actor and target may)."""
    fields = asdict(item)
    return {k: v for k, v in fields.items() if k not in {"id", "occurred_at", "actor", "source"}}


def test_api_and_cli_record_a_project_update_in_one_shape(
    registry: Registry, tmp_path: Path, database_url: str
) -> None:
    registry.app.ctx.auth.projects.create("other")
    response = client_for(registry, "admin").patch(
        f"{API}/projects/acme", json={"public": True, "quota_bytes": 1000}
    )
    assert response.status_code == 200, response.text
    cli(tmp_path, database_url, "project", "update", "other", "--public", "--quota", "1000")

    by_api = last(registry, outbox.PROJECT_UPDATED, "acme")
    by_cli = last(registry, outbox.PROJECT_UPDATED, "other")
    assert (by_api.actor, by_api.source) == ("admin", "testclient")
    assert (by_cli.actor, by_cli.source) == ("cli", None)
    assert by_api.data == by_cli.data == {"public": True, "quota_bytes": 1000}
    assert {**shape(by_api), "project": "other", "resource": "other"} == shape(by_cli)

    api_row, cli_row = entry(registry, "update", "acme"), entry(registry, "update", "other")
    assert (api_row.resource_type, api_row.detail) == ("project", by_api.data)
    assert {**shape(api_row), "project": "other", "resource": "other"} == shape(cli_row)


def test_api_and_cli_record_a_member_change_in_one_shape(
    registry: Registry, tmp_path: Path, database_url: str
) -> None:
    registry.app.ctx.auth.projects.create("other")
    client_for(registry, "admin").put(
        f"{API}/projects/acme/members/outsider", json={"role": "developer"}
    )
    cli(tmp_path, database_url, "project", "member", "add", "other", "outsider", "developer")
    by_api = last(registry, outbox.MEMBER_SET, "acme")
    by_cli = last(registry, outbox.MEMBER_SET, "other")
    assert by_api.data == by_cli.data == {"member": "outsider", "kind": "user", "role": "developer"}
    api_row, cli_row = entry(registry, "member.set", "acme"), entry(registry, "member.set", "other")
    assert {**shape(api_row), "project": "other", "resource": "other"} == shape(cli_row)


def test_a_rolled_back_change_leaves_no_event(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event is written, then the change fails in the same transaction: neither the
    change nor its event survives."""
    projects = registry.app.ctx.auth.projects
    real_emit = outbox.emit

    def emit_then_fail(conn: Connection, *args: Any, **kwargs: Any) -> None:
        real_emit(conn, *args, **kwargs)
        raise RuntimeError("the change failed after its event")

    before = outbox.recent(registry.app.ctx.db, limit=1000)
    monkeypatch.setattr(outbox, "emit", emit_then_fail)
    with pytest.raises(RuntimeError):
        projects.update("acme", public=True, actor=ALICE)
    with pytest.raises(RuntimeError):
        projects.set_member("acme", "outsider", Role.GUEST, actor=ALICE)
    monkeypatch.undo()
    assert outbox.recent(registry.app.ctx.db, limit=1000) == before
    assert projects.get("acme").public is False
    assert "outsider" not in {m.name for m in projects.members("acme")}
    assert registry.app.ctx.audit.find(actor="alice")[1] == 0


def _emit(db: Database, count: int) -> None:
    with db.write() as conn:
        outbox.emit_rows(
            conn,
            [
                outbox.event_row(outbox.PROJECT_CREATED, ALICE, resource=f"p{n}", project=f"p{n}")
                for n in range(count)
            ],
        )


def _rows(db: Database) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(select(s.audit_log.c.resource)).scalars())


def test_two_racing_consumers_never_write_a_row_twice(db: Database) -> None:
    _emit(db, 1200)  # more than one batch each
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            log = AuditLog(db)
            barrier.wait()
            for _ in range(5):
                log.consumer.catch_up(write_rows, limit=300)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = _rows(db)
    assert sorted(rows) == sorted(f"p{n}" for n in range(1200))
    assert Consumer(db, CONSUMER).position() == max(e.id for e in outbox.recent(db, limit=2000))


def test_a_crash_in_the_handler_leaves_the_cursor_unmoved(db: Database) -> None:
    _emit(db, 3)
    consumer = Consumer(db, CONSUMER)

    def write_then_crash(conn: Connection, events: Sequence[Event]) -> None:
        write_rows(conn, events)
        raise RuntimeError("the process died mid-batch")

    with pytest.raises(RuntimeError):
        consumer.catch_up(write_then_crash)
    assert consumer.position() == 0
    assert _rows(db) == []
    assert AuditLog(db).flush() == 3
    assert sorted(_rows(db)) == ["p0", "p1", "p2"]
    assert AuditLog(db).flush() == 0
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.audit_log)).scalar_one() == 3


def _cosign_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_signing_and_scanning_settings_have_their_own_types_in_one_shape(
    registry: Registry, tmp_path: Path, database_url: str
) -> None:
    """Trusted keys, the signature pull policy, scan settings and CVE allowlists are not
    plain `project.updated`: each has its type and audit action, the same from the API
    and the CLI, and names the key (never more than its public fingerprint)."""
    registry.app.ctx.auth.projects.create("other")
    admin = client_for(registry, "admin")
    pem = _cosign_pem()
    pem_file = tmp_path / "cosign.pub"
    pem_file.write_text(pem)
    calls = [
        admin.post(f"{API}/projects/acme/trusted-keys", json={"name": "release", "pem": pem}),
        admin.delete(f"{API}/projects/acme/trusted-keys/release"),
        admin.patch(f"{API}/projects/acme/pull-policy", json={"require_signed": True}),
        admin.put(
            f"{API}/projects/acme/scan-settings",
            json={"auto_scan": True, "prevent_vulnerable": True, "severity": "high"},
        ),
        admin.put(f"{API}/projects/acme/cve-allowlist", json={"items": ["CVE-2024-1"]}),
    ]
    for response in calls:
        assert response.status_code < 300, response.text
    cli(tmp_path, database_url, "project", "key", "add", "other", "release", str(pem_file))
    cli(tmp_path, database_url, "project", "key", "remove", "other", "release")
    cli(tmp_path, database_url, "project", "policy", "set", "other", "--require-signed")
    cli(
        tmp_path, database_url, "project", "policy", "vulnerability", "set", "other",
        "--auto-scan", "--prevent-vulnerable", "--severity", "high",
    )  # fmt: skip
    cli(
        tmp_path, database_url, "project", "policy", "vulnerability", "allowlist", "other",
        "CVE-2024-1",
    )  # fmt: skip

    expected = {
        outbox.PROJECT_KEY_ADDED: "key.add",
        outbox.PROJECT_KEY_REMOVED: "key.remove",
        outbox.PROJECT_POLICY_UPDATED: "pull-policy.update",
        outbox.PROJECT_SCAN_SETTINGS_UPDATED: "scan-settings.update",
        outbox.CVE_ALLOWLIST_UPDATED: "allowlist.update",
    }
    for type_, action in expected.items():
        by_api, by_cli = last(registry, type_, "acme"), last(registry, type_, "other")
        assert (by_api.actor, by_cli.actor) == ("admin", "cli")
        assert by_api.data == by_cli.data, type_
        assert {**shape(by_api), "project": "other", "resource": "other"} == shape(by_cli)
        api_row, cli_row = entry(registry, action, "acme"), entry(registry, action, "other")
        assert api_row.detail == by_api.data
        assert {**shape(api_row), "project": "other", "resource": "other"} == shape(cli_row)
    added = last(registry, outbox.PROJECT_KEY_ADDED, "acme").data
    assert set(added) == {"name", "kind", "fingerprint"}
    assert added["name"] == "release"
    assert not [
        e
        for e in outbox.recent(registry.app.ctx.db, limit=1000)
        if e.type == outbox.PROJECT_UPDATED and e.resource in ("acme", "other")
    ]


def test_the_system_allowlist_is_audited(registry: Registry) -> None:
    response = client_for(registry, "admin").put(
        f"{API}/system/cve-allowlist", json={"items": ["CVE-2024-2"]}
    )
    assert response.status_code == 200, response.text
    row = entry(registry, "allowlist.update", "system")
    assert (row.actor, row.resource_type, row.project) == ("admin", "cve-allowlist", None)
    assert row.detail == {"items": ["CVE-2024-2"], "expires_at": None}
