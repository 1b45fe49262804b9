"""Registered external scanners (Harbor scanner adapters): add, change, remove, pick the
default. Only system administrators manage them (portside.mgmt.routes.scans). The default
scanner is the one scans use when none is named; without a registered default, the
built-in scanner (when installed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from portside.auth.errors import Exists, Invalid, Missing
from portside.egress import EgressPolicy, Refused
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.scans.harbor import AUTH_SCHEMES, Registration
from portside.scans.scanner import BUILTIN

NAME_MAX = 64


@dataclass(frozen=True, slots=True)
class ScannerRecord:
    id: int
    name: str
    description: str | None
    url: str
    auth: str
    has_credential: bool
    enabled: bool
    is_default: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    def registration(self, credential: str | None) -> Registration:
        return Registration(self.name, self.url, self.auth, credential)


def _record(row: Any) -> ScannerRecord:
    return ScannerRecord(
        id=int(row.id),
        name=row.name,
        description=row.description,
        url=row.url,
        auth=row.auth,
        has_credential=bool(row.access_credential),
        enabled=bool(row.enabled),
        is_default=bool(row.is_default),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def check_name(name: str) -> None:
    if not name or len(name) > NAME_MAX or not all(c.isalnum() or c in "-_." for c in name):
        raise Invalid("a scanner name is 1-64 letters, digits, '-', '_' or '.'")
    if name == BUILTIN:
        raise Invalid(f"{BUILTIN!r} is the built-in scanner's name")


class ScannerRegistry:
    def __init__(self, db: Database, egress: EgressPolicy) -> None:
        self.db = db
        self.egress = egress

    def _check(self, url: str, auth: str) -> None:
        if auth not in AUTH_SCHEMES:
            raise Invalid(f"auth must be one of: {', '.join(repr(a) for a in AUTH_SCHEMES)}")
        try:
            self.egress.check(url)
        except Refused as error:
            raise Invalid(f"scanner URL refused: {error}") from None

    def list(self) -> list[ScannerRecord]:
        with self.db.read() as conn:
            rows = conn.execute(select(s.scanners).order_by(s.scanners.c.name)).all()
        return [_record(row) for row in rows]

    def get(self, name: str) -> ScannerRecord:
        with self.db.read() as conn:
            row = conn.execute(select(s.scanners).where(s.scanners.c.name == name)).first()
        if row is None:
            raise Missing(f"no scanner {name!r}")
        return _record(row)

    def credential(self, name: str) -> str | None:
        with self.db.read() as conn:
            value = conn.execute(
                select(s.scanners.c.access_credential).where(s.scanners.c.name == name)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def default(self) -> ScannerRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(s.scanners).where(
                    s.scanners.c.is_default.is_(True), s.scanners.c.enabled.is_(True)
                )
            ).first()
        return None if row is None else _record(row)

    def add(
        self,
        name: str,
        url: str,
        *,
        auth: str = "",
        access_credential: str | None = None,
        description: str | None = None,
        is_default: bool = False,
        created_by: str,
    ) -> ScannerRecord:
        check_name(name)
        self._check(url, auth)
        now = utcnow()
        try:
            with self.db.write() as conn:
                if is_default:
                    conn.execute(update(s.scanners).values(is_default=False))
                conn.execute(
                    s.scanners.insert().values(
                        name=name,
                        description=description,
                        url=url,
                        auth=auth,
                        access_credential=access_credential or None,
                        enabled=True,
                        is_default=is_default,
                        created_by=created_by,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise Exists(f"a scanner named {name!r} exists") from None
        return self.get(name)

    def update(self, name: str, **changes: Any) -> ScannerRecord:
        current = self.get(name)
        values = {k: v for k, v in changes.items() if v is not None}
        if "url" in values or "auth" in values:
            self._check(values.get("url", current.url), values.get("auth", current.auth))
        with self.db.write() as conn:
            if values.get("is_default"):
                conn.execute(update(s.scanners).values(is_default=False))
            conn.execute(
                update(s.scanners)
                .where(s.scanners.c.name == name)
                .values(**values, updated_at=utcnow())
            )
        return self.get(name)

    def remove(self, name: str) -> None:
        with self.db.write() as conn:
            gone = conn.execute(s.scanners.delete().where(s.scanners.c.name == name)).rowcount
        if not gone:
            raise Missing(f"no scanner {name!r}")
