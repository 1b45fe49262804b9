"""LDAP as a login source: the configured directory. An outage refuses LDAP logins
(without counting them as failed attempts); local accounts, including the local admin,
keep working."""

from __future__ import annotations

import structlog

from portside.auth.accounts import DirectoryUnavailable, LdapSource, LdapUserInfo
from portside.config import Settings

log = structlog.get_logger(__name__)


class _Directory:
    def __init__(self, settings: Settings) -> None:
        from portside.auth.ldap import LdapDirectory

        assert settings.ldap is not None
        self.directory = LdapDirectory(settings.ldap)

    def authenticate(self, username: str, password: str) -> LdapUserInfo | None:
        from portside.auth.ldap import LdapUnavailable

        try:
            return self.directory.authenticate(username, password)
        except LdapUnavailable as error:
            log.warning("ldap.unavailable", error=str(error))
            raise DirectoryUnavailable(str(error)) from error


def ldap_source(settings: Settings) -> LdapSource | None:
    return _Directory(settings) if settings.ldap is not None else None
