"""Fixtures for the LDAP tests: ``slapd``, one private OpenLDAP server per session
(see ``slapd.py``), and ``closed_ldap_url`` for "the directory is down"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .slapd import Slapd, free_port, start_slapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_ldap_url() -> str:
    """An ``ldap://`` URL on a local port nothing listens on (connections are refused)."""
    return f"ldap://127.0.0.1:{free_port()}"
