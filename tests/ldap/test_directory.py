"""LdapDirectory against a real OpenLDAP slapd: logins, groups, admin mapping, e-mail,
filter injection, TLS (ldaps:// and StartTLS) and a directory that is down or hangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from portside.auth.ldap import LdapDirectory, LdapUnavailable, LdapUser

from .slapd import Slapd, user_dn


@pytest.fixture
def directory(slapd: Slapd) -> LdapDirectory:
    return LdapDirectory(slapd.settings(groups={"admin_group": "registry-admins"}))


def test_alice_logs_in_with_her_groups_and_email(directory: LdapDirectory) -> None:
    user = directory.authenticate("alice", "alice-pw")
    assert user == LdapUser(
        username="alice",
        dn=user_dn("alice"),
        email="alice@example.org",
        groups=frozenset({"developers"}),
        is_admin=False,
    )


def test_carol_is_admin_through_the_admin_group(directory: LdapDirectory) -> None:
    user = directory.authenticate("carol", "carol-pw")
    assert user is not None
    assert user.groups == frozenset({"registry-admins"})
    assert user.is_admin
    assert user.email is None


def test_admin_group_compares_ignoring_case(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(groups={"admin_group": "Registry-Admins"}))
    user = directory.authenticate("carol", "carol-pw")
    assert user is not None
    assert user.is_admin


def test_nobody_is_admin_without_an_admin_group(slapd: Slapd) -> None:
    user = LdapDirectory(slapd.settings()).authenticate("carol", "carol-pw")
    assert user is not None
    assert not user.is_admin


def test_no_groups_without_a_groups_base(slapd: Slapd) -> None:
    user = LdapDirectory(slapd.settings(groups={"base_dn": None})).authenticate("bob", "bob-pw")
    assert user is not None
    assert user.groups == frozenset()


@pytest.mark.parametrize("login", ["ALICE", " alice ", "Alice"])
def test_the_directory_spelling_of_the_login_is_returned(
    directory: LdapDirectory, login: str
) -> None:
    # uid matches ignoring case and surrounding spaces; the registry must not see
    # "ALICE" and "alice" as two people.
    user = directory.authenticate(login, "alice-pw")
    assert user is not None
    assert user.username == "alice"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "bob-pw"),  # wrong password
        ("alice", "ALICE-PW"),
        ("nobody", "alice-pw"),  # unknown user
        ("alice", ""),  # empty password: an unauthenticated bind, refused before binding
        ("", "alice-pw"),
    ],
)
def test_refused_logins(directory: LdapDirectory, username: str, password: str) -> None:
    assert directory.authenticate(username, password) is None


@pytest.mark.parametrize(
    "username",
    ["*", "al*", "alice)(uid=*", "*)(uid=*", "alice)(|(uid=*", "alice\\", "alice\x00", "(uid=*)"],
)
def test_filter_metacharacters_match_nothing(directory: LdapDirectory, username: str) -> None:
    assert directory.authenticate(username, "alice-pw") is None
    assert directory.lookup(username) is None


def test_user_filter_limits_who_may_log_in(slapd: Slapd) -> None:
    groups_only = LdapDirectory(slapd.settings(user_filter="(objectClass=groupOfNames)"))
    assert groups_only.authenticate("alice", "alice-pw") is None
    unparenthesized = LdapDirectory(slapd.settings(user_filter="objectClass=inetOrgPerson"))
    assert unparenthesized.authenticate("alice", "alice-pw") is not None


def test_lookup_reads_groups_without_a_password(directory: LdapDirectory) -> None:
    bob = directory.lookup("bob")
    assert bob == LdapUser("bob", user_dn("bob"), None, frozenset({"developers"}), False)
    carol = directory.lookup("carol")
    assert carol is not None
    assert carol.is_admin
    assert directory.lookup("nobody") is None


def test_wrong_search_password_is_unavailable(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(bind_password="wrong"))
    with pytest.raises(LdapUnavailable, match="bind"):
        directory.authenticate("alice", "alice-pw")


def test_anonymous_search_sees_what_the_acl_allows(slapd: Slapd) -> None:
    # The anonymous bind works, but the test ACL shows anonymous clients nothing, so
    # the search base looks missing: a directory this setup cannot use, not "no user".
    directory = LdapDirectory(slapd.settings(bind_dn=None, bind_password=None))
    with pytest.raises(LdapUnavailable, match="noSuchObject"):
        directory.authenticate("alice", "alice-pw")


@pytest.mark.parametrize("where", ["base_dn", "groups"])
def test_missing_search_base_is_unavailable(slapd: Slapd, where: str) -> None:
    missing = "ou=nowhere,dc=example,dc=org"
    value: object = {"base_dn": missing} if where == "groups" else missing
    directory = LdapDirectory(slapd.settings(**{where: value}))
    with pytest.raises(LdapUnavailable, match="noSuchObject"):
        directory.lookup("alice")


def test_invalid_user_filter_is_unavailable(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(user_filter="(objectClass=person"))
    with pytest.raises(LdapUnavailable, match="filter"):
        directory.authenticate("alice", "alice-pw")


def test_directory_down_is_unavailable_quickly(slapd: Slapd, closed_ldap_url: str) -> None:
    directory = LdapDirectory(slapd.settings(url=closed_ldap_url, timeout_seconds=2))
    started = time.monotonic()
    with pytest.raises(LdapUnavailable):
        directory.authenticate("alice", "alice-pw")
    with pytest.raises(LdapUnavailable):
        directory.lookup("alice")
    assert time.monotonic() - started < 2


def test_empty_password_never_reaches_the_server(slapd: Slapd, closed_ldap_url: str) -> None:
    directory = LdapDirectory(slapd.settings(url=closed_ldap_url))
    assert directory.authenticate("alice", "") is None


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"ldap://127.0.0.1:{sock.getsockname()[1]}"


def test_a_server_that_does_not_answer_times_out(slapd: Slapd, silent_server: str) -> None:
    directory = LdapDirectory(slapd.settings(url=silent_server, timeout_seconds=0.5))
    started = time.monotonic()
    with pytest.raises(LdapUnavailable):
        directory.authenticate("alice", "alice-pw")
    assert time.monotonic() - started < 3


def test_ldaps_with_the_ca_file(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(url=slapd.ldaps_url, ca_file=slapd.tls.ca_file))
    user = directory.authenticate("alice", "alice-pw")
    assert user is not None
    assert user.groups == frozenset({"developers"})


def test_start_tls_with_the_ca_file(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(start_tls=True, ca_file=slapd.tls.ca_file))
    assert directory.authenticate("alice", "alice-pw") is not None
    assert directory.authenticate("alice", "wrong") is None


@pytest.mark.parametrize("start_tls", [False, True])
def test_untrusted_certificate_is_unavailable(slapd: Slapd, start_tls: bool) -> None:
    url = slapd.url if start_tls else slapd.ldaps_url
    settings = slapd.settings(url=url, start_tls=start_tls, ca_file=slapd.tls.other_ca_file)
    with pytest.raises(LdapUnavailable, match="certificate"):
        LdapDirectory(settings).authenticate("alice", "alice-pw")


def test_certificate_for_another_host_is_unavailable(slapd: Slapd) -> None:
    # The server certificate names IP 127.0.0.1 only.
    url = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    directory = LdapDirectory(slapd.settings(url=url, ca_file=slapd.tls.ca_file))
    with pytest.raises(LdapUnavailable, match="match"):
        directory.authenticate("alice", "alice-pw")


def test_verification_can_be_turned_off(slapd: Slapd) -> None:
    url = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    settings = slapd.settings(url=url, ca_file=slapd.tls.other_ca_file, verify_certificate=False)
    assert LdapDirectory(settings).authenticate("alice", "alice-pw") is not None
