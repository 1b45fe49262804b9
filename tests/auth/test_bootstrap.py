"""Start-up decisions: refuse an open registry on a network address, create the first admin
from settings once, and what counts as loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portside.auth.accounts import Accounts
from portside.auth.bootstrap import is_loopback, prepare_auth
from portside.auth.throttle import LoginThrottle
from portside.config import ConfigError, Settings, load_settings
from portside.metadata.db import Database
from portside.metadata.engine import make_engine


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        **overrides,
    )


class Users:
    """Direct access to the accounts in the test database."""

    def __init__(self, database_url: str) -> None:
        self.db = Database(make_engine(database_url))
        self.accounts = Accounts(self.db, LoginThrottle(self.db, 100, 60))

    def names(self) -> list[tuple[str, bool]]:
        return [(u.username, u.is_admin) for u in self.accounts.list_users()]

    def can_login(self, username: str, password: str) -> bool:
        return self.accounts.authenticate(username, password, "bootstrap-test") is not None

    def close(self) -> None:
        self.db.engine.dispose()


@pytest.fixture
def users(database_url: str) -> Iterator[Users]:
    found = Users(database_url)
    yield found
    found.close()


@pytest.mark.parametrize("listen", ["0.0.0.0:5000", "[::]:5000", "192.0.2.10:5000"])
def test_open_registry_on_network_address_is_refused(
    tmp_path: Path, database_url: str, listen: str, users: Users
) -> None:
    settings = make_settings(tmp_path, database_url, listen=listen)
    with pytest.raises(ConfigError) as raised:
        prepare_auth(settings)
    message = str(raised.value)
    assert "auth.mode" in message
    assert "portside admin create" in message
    assert listen in message
    assert users.names() == []


@pytest.mark.parametrize("listen", ["127.0.0.1:5000", "[::1]:5000", "localhost:5000"])
def test_open_registry_on_loopback_is_allowed(
    tmp_path: Path, database_url: str, listen: str, users: Users
) -> None:
    prepare_auth(make_settings(tmp_path, database_url, listen=listen))
    assert users.names() == []


def test_mode_none_on_network_address_is_allowed(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, listen="0.0.0.0:5000", auth={"mode": "none"})
    prepare_auth(settings)


def test_existing_account_allows_network_address(
    tmp_path: Path, database_url: str, users: Users
) -> None:
    users.accounts.create_user("root", "a-good-password", admin=True)
    prepare_auth(make_settings(tmp_path, database_url, listen="0.0.0.0:5000"))


def test_ldap_allows_network_address(tmp_path: Path, database_url: str, users: Users) -> None:
    ldap = {"url": "ldap://127.0.0.1:1389", "base_dn": "dc=example,dc=test"}
    prepare_auth(make_settings(tmp_path, database_url, listen="0.0.0.0:5000", ldap=ldap))
    assert users.names() == []


def test_initial_admin_password_creates_admin_once(
    tmp_path: Path, database_url: str, users: Users
) -> None:
    first = make_settings(
        tmp_path,
        database_url,
        listen="0.0.0.0:5000",
        auth={"initial_admin_password": "first-admin-password"},
    )
    prepare_auth(first)
    assert users.names() == [("admin", True)]
    assert users.can_login("admin", "first-admin-password")

    second = make_settings(
        tmp_path,
        database_url,
        listen="0.0.0.0:5000",
        auth={"initial_admin_password": "second-admin-password"},
    )
    prepare_auth(second)
    prepare_auth(first)
    assert users.names() == [("admin", True)]
    assert users.can_login("admin", "first-admin-password")
    assert not users.can_login("admin", "second-admin-password")


def test_initial_admin_with_custom_username(
    tmp_path: Path, database_url: str, users: Users
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        auth={"initial_admin_username": "root", "initial_admin_password": "root-password-1"},
    )
    prepare_auth(settings)
    assert users.names() == [("root", True)]


def test_initial_admin_not_created_when_accounts_exist(
    tmp_path: Path, database_url: str, users: Users
) -> None:
    users.accounts.create_user("alice", "alice-password")
    settings = make_settings(tmp_path, database_url, auth={"initial_admin_password": "x" * 12})
    prepare_auth(settings)
    assert users.names() == [("alice", False)]


def test_initial_admin_from_environment(
    tmp_path: Path, database_url: str, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD", "from-the-environment")
    prepare_auth(make_settings(tmp_path, database_url, listen="0.0.0.0:5000"))
    assert users.can_login("admin", "from-the-environment")


def test_short_initial_admin_password_is_a_config_error(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, auth={"initial_admin_password": "short"})
    with pytest.raises(ConfigError, match="initial_admin_password"):
        prepare_auth(settings)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("::1", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("10.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - a string under test, nothing binds it
        ("::", False),
        ("192.0.2.1", False),
        ("registry.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_unreadable_token_key_file_is_a_config_error(tmp_path: Path, database_url: str) -> None:
    """Workers load the key lazily, so start-up must check it."""
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("not a PEM key\n")
    settings = make_settings(tmp_path, database_url, auth={"token": {"key_file": str(not_a_key)}})
    with pytest.raises(ConfigError, match=r"auth\.token\.key_file"):
        prepare_auth(settings)
    missing = make_settings(
        tmp_path, database_url, auth={"token": {"key_file": str(tmp_path / "missing.pem")}}
    )
    with pytest.raises(ConfigError, match=r"auth\.token\.key_file: cannot read"):
        prepare_auth(missing)


def test_bad_external_issuer_key_is_a_config_error(tmp_path: Path, database_url: str) -> None:
    garbage = tmp_path / "issuer.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    issuer = {"issuer": "corp", "audience": "portside", "public_key_file": str(garbage)}
    settings = make_settings(tmp_path, database_url, auth={"external_issuer": issuer})
    with pytest.raises(ConfigError, match=r"auth\.external_issuer\.public_key_file"):
        prepare_auth(settings)
