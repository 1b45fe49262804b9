"""Start-up decisions about authentication: create the first admin from the environment,
and refuse to run an open registry on a non-loopback address unless configured to."""

from __future__ import annotations

import ipaddress

import structlog

from portside.auth.accounts import Accounts
from portside.auth.errors import ManagementError
from portside.auth.throttle import LoginThrottle
from portside.config import ConfigError, Settings
from portside.metadata.db import Database
from portside.metadata.engine import make_engine

log = structlog.get_logger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare_auth(settings: Settings) -> None:
    """Run before serving: may create the first admin; raises ConfigError if the
    registry would be open to the network without `auth.mode: none`."""
    db = Database(make_engine(settings.database_url))
    try:
        accounts = Accounts(db, LoginThrottle(db, 1, 1))
        has_account = accounts.any_account()
        password = settings.auth.initial_admin_password
        if not has_account and password:
            try:
                accounts.create_user(settings.auth.initial_admin_username, password, admin=True)
            except ManagementError as error:
                raise ConfigError(
                    f"auth.initial_admin_password / auth.initial_admin_username: {error.message}"
                ) from None
            log.info("auth.initial_admin_created", username=settings.auth.initial_admin_username)
            has_account = True
    finally:
        db.engine.dispose()
    _check_key_files(settings)
    if settings.auth.mode == "none":
        log.warning(
            "auth.disabled",
            message="auth.mode is none: anyone who can reach this registry may push and delete",
        )
        return
    if has_account or settings.ldap is not None:
        return
    if not is_loopback(settings.host):
        raise ConfigError(
            f"listen: {settings.listen} is reachable from other machines, but no account "
            "exists, so the registry would be open to anyone. Create the first admin with "
            "`portside admin create NAME --password-stdin` (or set "
            "PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD), or set `auth.mode: none` to run an "
            "open registry on purpose."
        )
    log.warning(
        "auth.open_registry",
        message="no account exists: this registry is open (anyone on this machine may push "
        "and delete). Create the first admin with "
        "`portside admin create NAME --password-stdin` to turn authentication on.",
    )


def _check_key_files(settings: Settings) -> None:
    """Configured key files are read at start-up, so a bad one is a config error now
    rather than a failed first login (workers load them lazily)."""
    from portside.auth.keys import load_key_file, load_public_key

    token = settings.auth.token
    if token.key_file is not None:
        load_key_file(token.key_file, token.algorithm)
    external = settings.auth.external_issuer
    if external is not None:
        load_public_key(external.public_key_file, "auth.external_issuer.public_key_file")
