"""The account commands (`portside admin/user/project/robot …`) through click's CliRunner.

Each test gets its own data directory; its database is the default SQLite file there, or
a fresh PostgreSQL database when PORTSIDE_TEST_DATABASE_URL is set. What the commands
did is checked through the services on that same database (e.g. a robot secret printed
by `robot create` must authenticate)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from portside.auth.accounts import Accounts
from portside.auth.identity import Identity
from portside.auth.policy import Policy
from portside.auth.roles import Role
from portside.auth.throttle import LoginThrottle
from portside.cli import main
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.conftest import POSTGRES_URL, fresh_database

ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-22"


@dataclass
class Cli:
    data_dir: Path
    database_url: str
    env: dict[str, str | None] = field(default_factory=dict)
    _db: Database | None = None

    def __call__(self, *args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(
            main, [*args, "--data-dir", str(self.data_dir)], input=input, env=self.env
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (args, result.output)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(make_engine(self.database_url))
        return self._db

    def authenticate(self, username: str, password: str) -> Identity | None:
        accounts = Accounts(self.db, LoginThrottle(self.db, 1000, 60))
        return accounts.authenticate(username, password, "cli-test")

    def close(self) -> None:
        if self._db is not None:
            self._db.engine.dispose()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    data_dir = tmp_path / "data"
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    if POSTGRES_URL:
        with fresh_database(tmp_path) as url:
            env["PORTSIDE_DATABASE__URL"] = url
            runner = Cli(data_dir, url, env)
            yield runner
            runner.close()
        return
    runner = Cli(data_dir, f"sqlite:///{data_dir.absolute() / 'portside.db'}", env)
    yield runner
    runner.close()


@pytest.fixture
def with_admin(cli: Cli) -> Cli:
    result = cli.ok("admin", "create", "root", "--password-stdin", input=ADMIN_PASSWORD + "\n")
    assert "created administrator root" in result.stdout
    return cli


def users_of(cli: Cli) -> dict[str, dict[str, Any]]:
    return {u["username"]: u for u in cli.json("user", "list")}


def robot_json(result: Result) -> dict[str, Any]:
    value = json.loads(result.stdout)
    assert isinstance(value, dict)
    return value


# --- admins and users -----------------------------------------------------------------


def test_admin_create_reads_password_from_stdin(with_admin: Cli) -> None:
    cli = with_admin
    users = users_of(cli)
    assert list(users) == ["root"]
    assert users["root"]["admin"] is True
    assert users["root"]["disabled"] is False
    assert users["root"]["source"] == "local"
    identity = cli.authenticate("root", ADMIN_PASSWORD)
    assert identity is not None
    assert identity.is_admin
    # The newline ended the password; it is not part of it.
    assert cli.authenticate("root", ADMIN_PASSWORD + "\n") is None


def test_password_needs_stdin_flag_when_not_a_terminal(cli: Cli) -> None:
    result = cli("admin", "create", "root", input=ADMIN_PASSWORD + "\n")
    assert result.exit_code == 2
    assert "--password-stdin" in result.output
    assert cli.json("user", "list") == []


@pytest.mark.parametrize(
    "command", [["admin", "create", "x"], ["user", "create", "x"], ["user", "passwd", "x"]]
)
def test_password_cannot_be_given_on_the_command_line(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--password", "on-the-command-line")
    assert result.exit_code == 2
    assert "No such option" in result.output


def _all_commands(group: click.Group, path: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        full = f"{path} {name}".strip()
        yield full, command
        if isinstance(command, click.Group):
            yield from _all_commands(command, full)


def test_no_command_takes_a_secret_as_an_option() -> None:
    """Secrets come from stdin only: no option or argument anywhere is a password or
    secret (they would end up in shell history and `ps`)."""
    checked = 0
    for path, command in _all_commands(main):
        for param in command.params:
            name = (param.name or "").lower()
            checked += 1
            if "password" in name or "secret" in name or "token" in name:
                assert name in ("password_stdin", "secret_stdin"), (path, name)
                assert isinstance(param, click.Option), (path, name)
                assert param.is_flag, (path, name)
    assert checked > 30


@pytest.mark.parametrize("password", ["short", "", " leading-space", "trailing-space "])
def test_bad_passwords_are_refused(with_admin: Cli, password: str) -> None:
    cli = with_admin
    result = cli("user", "create", "alice", "--password-stdin", input=password + "\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: password must")
    assert "alice" not in users_of(cli)
    changed = cli("user", "passwd", "root", "--password-stdin", input=password + "\n")
    assert changed.exit_code == 1
    assert cli.authenticate("root", ADMIN_PASSWORD) is not None


def test_user_lifecycle(with_admin: Cli) -> None:
    cli = with_admin
    created = cli.ok(
        "user",
        "create",
        "alice",
        "--email",
        "alice@example.test",
        "--password-stdin",
        input=USER_PASSWORD + "\n",
    )
    assert "created user alice" in created.stdout
    table = cli.ok("user", "list").stdout.splitlines()
    assert table[0].split() == ["USERNAME", "SOURCE", "ADMIN", "DISABLED", "EMAIL"]
    assert any(line.split() == ["alice", "local", "alice@example.test"] for line in table)
    alice = users_of(cli)["alice"]
    assert alice["admin"] is False
    assert alice["email"] == "alice@example.test"
    datetime.fromisoformat(alice["created_at"])
    assert cli.authenticate("alice", USER_PASSWORD) is not None

    again = cli("user", "create", "alice", "--password-stdin", input=USER_PASSWORD + "\n")
    assert again.exit_code == 1
    assert "already exists" in again.stderr

    assert "disabled user alice" in cli.ok("user", "disable", "alice").stdout
    assert users_of(cli)["alice"]["disabled"] is True
    assert cli.authenticate("alice", USER_PASSWORD) is None
    assert "enabled user alice" in cli.ok("user", "enable", "alice").stdout
    assert users_of(cli)["alice"]["disabled"] is False
    assert cli.authenticate("alice", USER_PASSWORD) is not None

    cli.ok("user", "passwd", "alice", "--password-stdin", input="a-brand-new-password\n")
    assert cli.authenticate("alice", USER_PASSWORD) is None
    assert cli.authenticate("alice", "a-brand-new-password") is not None

    assert "deleted user alice" in cli.ok("user", "delete", "alice").stdout
    assert list(users_of(cli)) == ["root"]
    assert cli.authenticate("alice", "a-brand-new-password") is None
    missing = cli("user", "delete", "alice")
    assert missing.exit_code == 1
    assert "no user 'alice'" in missing.stderr
    for command in ("disable", "enable"):
        assert cli("user", command, "alice").exit_code == 1


def test_invalid_username_is_refused(with_admin: Cli) -> None:
    for name in ("_underscore", "has space", "robot$x", "x" * 129):
        result = with_admin("user", "create", name, "--password-stdin", input=USER_PASSWORD)
        assert result.exit_code == 1, name
        assert "invalid username" in result.stderr
    assert list(users_of(with_admin)) == ["root"]


def test_last_admin_cannot_be_disabled_or_deleted(with_admin: Cli) -> None:
    cli = with_admin
    for command in ("disable", "delete"):
        result = cli("user", command, "root")
        assert result.exit_code == 1
        assert "last enabled administrator" in result.stderr
    assert users_of(cli)["root"] == {**users_of(cli)["root"], "admin": True, "disabled": False}

    cli.ok("user", "create", "second", "--admin", "--password-stdin", input=USER_PASSWORD)
    assert users_of(cli)["second"]["admin"] is True
    cli.ok("user", "disable", "root")
    # Now `second` is the only enabled admin.
    for command in ("disable", "delete"):
        result = cli("user", command, "second")
        assert result.exit_code == 1
        assert "last enabled administrator" in result.stderr
    cli.ok("user", "enable", "root")
    cli.ok("user", "delete", "second")
    assert list(users_of(cli)) == ["root"]


def test_user_with_memberships_can_be_deleted(with_admin: Cli) -> None:
    cli = with_admin
    cli.ok("user", "create", "alice", "--password-stdin", input=USER_PASSWORD)
    cli.ok("project", "create", "acme")
    cli.ok("project", "member", "add", "acme", "alice", "developer")
    cli.ok("user", "delete", "alice")
    assert "alice" not in cli.ok("project", "member", "list", "acme").stdout


# --- projects and members -------------------------------------------------------------


def test_project_create_and_list(with_admin: Cli) -> None:
    cli = with_admin
    result = cli.ok("project", "create", "acme", "--public", "--quota", "10GiB")
    assert "created public project acme" in result.stdout
    assert "created private project beta" in cli.ok("project", "create", "beta").stdout
    projects = {p["name"]: p for p in cli.json("project", "list")}
    assert list(projects) == ["acme", "beta"]
    assert projects["acme"]["public"] is True
    assert projects["acme"]["quota_bytes"] == 10737418240
    assert projects["acme"]["repositories"] == 0
    assert projects["beta"]["public"] is False
    assert projects["beta"]["quota_bytes"] is None
    table = cli.ok("project", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "VISIBILITY", "REPOSITORIES", "QUOTA"]
    assert table[1].split() == ["acme", "public", "0", "10.0", "GiB"]
    assert table[2].split() == ["beta", "private", "0", "-"]

    duplicate = cli("project", "create", "acme")
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    assert cli("project", "create", "Bad_Name").exit_code == 1
    assert cli("project", "create", "gamma", "--quota", "lots").exit_code == 2
    assert [p["name"] for p in cli.json("project", "list")] == ["acme", "beta"]


@pytest.mark.parametrize(
    ("quota", "expected"),
    [("500MB", 500_000_000), ("1TiB", 1024**4), ("2048", 2048), ("1.5GiB", 3 * 1024**3 // 2)],
)
def test_quota_sizes(with_admin: Cli, quota: str, expected: int) -> None:
    with_admin.ok("project", "create", "sized", "--quota", quota)
    assert with_admin.json("project", "list")[0]["quota_bytes"] == expected


def test_members_with_every_role(with_admin: Cli) -> None:
    cli = with_admin
    cli.ok("project", "create", "acme")
    names = {role: f"user-{role.value}" for role in Role}
    for role, name in names.items():
        cli.ok("user", "create", name, "--password-stdin", input=USER_PASSWORD)
        result = cli.ok("project", "member", "add", "acme", name, role.value)
        assert f"{name} is {role.value} in acme" in result.stdout
    listed = cli.ok("project", "member", "list", "acme").stdout.splitlines()
    assert listed[0].split() == ["NAME", "KIND", "ROLE"]
    rows = {tuple(line.split()) for line in listed[1:]}
    assert rows == {(name, "user", role.value) for role, name in names.items()}

    # The roles are real: the policy sees them.
    policy = Policy(cli.db)
    for role, name in names.items():
        identity = cli.authenticate(name, USER_PASSWORD)
        assert identity is not None
        assert policy.project_access(identity, "acme").role == role

    # Changing a role replaces it; removing a member removes it.
    guest = names[Role.GUEST]
    cli.ok("project", "member", "add", "acme", guest, "maintainer")
    assert (guest, "user", "maintainer") in {
        tuple(line.split())
        for line in cli.ok("project", "member", "list", "acme").stdout.splitlines()
    }
    assert "removed" in cli.ok("project", "member", "remove", "acme", guest).stdout
    listed_after = cli.ok("project", "member", "list", "acme").stdout
    assert guest not in listed_after
    again = cli("project", "member", "remove", "acme", guest)
    assert again.exit_code == 1
    assert "is not a member" in again.stderr


def test_member_add_errors(with_admin: Cli) -> None:
    cli = with_admin
    cli.ok("project", "create", "acme")
    unknown = cli("project", "member", "add", "acme", "ghost", "developer")
    assert unknown.exit_code == 1
    assert "no user 'ghost'" in unknown.stderr
    no_project = cli("project", "member", "add", "nowhere", "root", "developer")
    assert no_project.exit_code == 1
    assert "no project 'nowhere'" in no_project.stderr
    bad_role = cli("project", "member", "add", "acme", "root", "overlord")
    assert bad_role.exit_code == 2
    assert cli.ok("project", "member", "list", "acme").stdout.splitlines()[1:] == []


def test_group_members(with_admin: Cli) -> None:
    cli = with_admin
    cli.ok("project", "create", "acme")
    result = cli.ok("project", "member", "add", "acme", "ops-team", "guest", "--group")
    assert "group ops-team is guest in acme" in result.stdout
    rows = [
        line.split() for line in cli.ok("project", "member", "list", "acme").stdout.splitlines()
    ]
    assert ["ops-team", "group", "guest"] in rows
    cli.ok("project", "member", "remove", "acme", "ops-team", "--group")
    assert "ops-team" not in cli.ok("project", "member", "list", "acme").stdout


# --- robots ---------------------------------------------------------------------------


@pytest.fixture
def with_project(with_admin: Cli) -> Cli:
    with_admin.ok("project", "create", "acme")
    with_admin.ok("project", "create", "pub", "--public")
    return with_admin


def test_robot_create_prints_working_secret(with_project: Cli) -> None:
    cli = with_project
    before = datetime.now(UTC)
    result = cli.ok(
        "robot", "create", "acme", "ci", "--permissions", "pull,push", "--expires-in", "7", "--json"
    )
    robot = robot_json(result)
    assert robot["name"] == "robot$acme+ci"
    assert robot["project"] == "acme"
    assert robot["permissions"] == {"acme": ["pull", "push"]}
    assert robot["disabled"] is False
    expires = datetime.fromisoformat(robot["expires_at"])
    assert before + timedelta(days=7) <= expires <= datetime.now(UTC) + timedelta(days=7)
    secret = robot["secret"]
    assert isinstance(secret, str)
    assert len(secret) >= 40

    identity = cli.authenticate("robot$acme+ci", secret)
    assert identity is not None
    assert identity.kind == "robot"
    assert Policy(cli.db).repository_actions(identity, "acme/app") == {"pull", "push"}
    assert cli.authenticate("robot$acme+ci", secret[:-1]) is None
    # Listing never shows the secret again.
    assert secret not in cli.ok("robot", "list", "--json").stdout
    assert secret not in cli.ok("robot", "list").stdout


def test_robot_create_plain_output(with_project: Cli) -> None:
    result = with_project.ok("robot", "create", "acme", "ci", "--permissions", "pull")
    lines = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    assert lines["name:"] == "robot$acme+ci"
    assert with_project.authenticate("robot$acme+ci", lines["secret:"]) is not None
    assert "shown only now" in result.stderr
    assert lines["secret:"] not in result.stderr


def test_robot_lifecycle(with_project: Cli) -> None:
    cli = with_project
    name = "robot$acme+ci"
    first = robot_json(cli.ok("robot", "create", "acme", "ci", "--permissions", "pull", "--json"))
    secret = first["secret"]

    listed = cli.json("robot", "list", "acme")
    assert [r["name"] for r in listed] == [name]
    assert listed[0]["expires_at"] is None
    assert "secret" not in listed[0]
    table = cli.ok("robot", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "PERMISSIONS", "DISABLED", "EXPIRES"]
    assert table[1].split() == [name, "acme:pull", "never"]
    assert cli.json("robot", "list", "pub") == []

    assert f"disabled {name}" in cli.ok("robot", "disable", name).stdout
    assert cli.json("robot", "list", "acme")[0]["disabled"] is True
    assert cli.authenticate(name, secret) is None
    assert f"enabled {name}" in cli.ok("robot", "enable", name).stdout
    assert cli.authenticate(name, secret) is not None

    rotated = robot_json(cli.ok("robot", "rotate", name, "--json"))
    assert rotated["name"] == name
    assert rotated["secret"] != secret
    assert cli.authenticate(name, secret) is None
    assert cli.authenticate(name, rotated["secret"]) is not None

    assert f"deleted {name}" in cli.ok("robot", "delete", name).stdout
    assert cli.json("robot", "list") == []
    assert cli.authenticate(name, rotated["secret"]) is None
    for command in ("delete", "disable", "rotate"):
        result = cli("robot", command, name)
        assert result.exit_code == 1, command
        assert f"no robot '{name}'" in result.stderr


def test_robot_create_errors(with_project: Cli) -> None:
    cli = with_project
    bad_actions = cli("robot", "create", "acme", "ci", "--permissions", "pull,fly")
    assert bad_actions.exit_code == 1
    assert "pull, push, delete" in bad_actions.stderr
    no_project = cli("robot", "create", "nowhere", "ci", "--permissions", "pull")
    assert no_project.exit_code == 1
    assert "no project 'nowhere'" in no_project.stderr
    bad_name = cli("robot", "create", "acme", "CI+x", "--permissions", "pull")
    assert bad_name.exit_code == 1
    assert (
        cli("robot", "create", "acme", "ci", "--permissions", "pull", "--expires-in", "0").exit_code
        == 2
    )
    cli.ok("robot", "create", "acme", "ci", "--permissions", "pull")
    duplicate = cli("robot", "create", "acme", "ci", "--permissions", "pull")
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    assert [r["name"] for r in cli.json("robot", "list")] == ["robot$acme+ci"]


def test_robot_create_system_with_grants(with_project: Cli) -> None:
    cli = with_project
    result = cli.ok(
        "robot",
        "create-system",
        "builder",
        "--grant",
        "acme:pull",
        "--grant",
        "pub:pull,push",
        "--json",
    )
    robot = robot_json(result)
    assert robot["name"] == "robot$builder"
    assert robot["project"] is None
    assert robot["permissions"] == {"acme": ["pull"], "pub": ["pull", "push"]}
    identity = cli.authenticate("robot$builder", robot["secret"])
    assert identity is not None
    policy = Policy(cli.db)
    assert policy.repository_actions(identity, "acme/x") == {"pull"}
    assert policy.repository_actions(identity, "pub/x") == {"pull", "push"}
    # A system robot is listed under each project it has rights in.
    assert [r["name"] for r in cli.json("robot", "list", "pub")] == ["robot$builder"]

    malformed = cli("robot", "create-system", "other", "--grant", "acme")
    assert malformed.exit_code == 2
    missing = cli("robot", "create-system", "other", "--grant", "nowhere:pull")
    assert missing.exit_code == 1
    assert "no project 'nowhere'" in missing.stderr
    assert cli("robot", "create-system", "other").exit_code == 2  # --grant is required
    assert [r["name"] for r in cli.json("robot", "list")] == ["robot$builder"]


# --- audit ----------------------------------------------------------------------------


def test_commands_are_audited_without_secrets(with_project: Cli) -> None:
    cli = with_project
    cli.ok("user", "create", "alice", "--password-stdin", input=USER_PASSWORD)
    cli.ok("user", "passwd", "alice", "--password-stdin", input="another-password-3\n")
    secret = robot_json(cli.ok("robot", "create", "acme", "ci", "--permissions", "pull", "--json"))[
        "secret"
    ]
    rotated = robot_json(cli.ok("robot", "rotate", "robot$acme+ci", "--json"))["secret"]
    with cli.db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(s.audit_log))]
    actions = {(r["action"], r["resource_type"], r["resource"]) for r in rows}
    assert ("create", "user", "root") in actions
    assert ("create", "user", "alice") in actions
    assert ("password", "user", "alice") in actions
    assert ("create", "robot", "robot$acme+ci") in actions
    assert ("rotate", "robot", "robot$acme+ci") in actions
    assert all(r["actor"] == "cli" for r in rows)
    for row in rows:
        text = " ".join(str(v) for v in row.values())
        for value in (ADMIN_PASSWORD, USER_PASSWORD, "another-password-3", secret, rotated):
            assert value not in text, row
