"""Per-project storage quotas, enforced wherever a push adds bytes: a blob upload that
finishes (the PUT closing a chunked upload, a monolithic POST ?digest=), a cross-repository
mount, and a manifest PUT.

What counts is a project's used bytes (content.usage). A blob that a repository of the
project links already adds nothing, so pushing it again, or into another repository of
the project, always succeeds; a new blob adds its size, a new manifest row its bytes. A
push that would take the project past its quota is refused with DENIED (403) before
anything is committed: no blob row, link, blob file or manifest is left, and the refused
upload's data is deleted. A mount that would exceed the quota is refused the same way
rather than answered with an upload to start: uploading the same bytes could only be
refused again. Lowering a quota below what a project uses removes nothing; pushes that add
bytes are refused until the project is back under it.

Only projects with a quota pay for this: the push reads the quota in the query that looks
up its repository anyway (Database.ensure_push_repository). For those, the check runs in
the write transaction that links the blob or stores the manifest, after locking the
project's row (FOR UPDATE on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE),
so two concurrent pushes cannot both pass the check and exceed the quota together. Each
such transaction takes that lock before any other row lock except its repository's, so
pushes cannot deadlock on it. The check sums the project's blobs on each push that adds
bytes: milliseconds for thousands of blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from portside.content.usage import project_holds_blob, project_used
from portside.errors import QuotaExceeded
from portside.metadata import schema as s


@dataclass(frozen=True, slots=True)
class HeldQuota:
    """A project's quota, its row locked until the transaction ends."""

    project: str
    limit: int


def hold(conn: Connection, project: str, quota: int | None) -> HeldQuota | None:
    """With `quota` as the push's repository lookup read it: None (no quota) costs
    nothing; otherwise lock the project's row and read the quota again under the lock."""
    if quota is None:
        return None
    p = s.projects
    limit = conn.execute(
        select(p.c.quota_bytes).where(p.c.name == project).with_for_update()
    ).scalar_one_or_none()
    return None if limit is None else HeldQuota(project, int(limit))


def admit_blob(conn: Connection, held: HeldQuota | None, digest: str, size: int) -> None:
    """Refuse linking the blob if it is new to the project and would exceed its quota."""
    if held is None or project_holds_blob(conn, held.project, digest):
        return
    admit_bytes(conn, held, size)


def admit_bytes(conn: Connection, held: HeldQuota | None, size: int) -> None:
    """Refuse adding `size` new bytes to the project if that would exceed its quota."""
    if held is None or size <= 0:
        return
    used = project_used(conn, held.project)
    if used + size > held.limit:
        raise QuotaExceeded(
            f"quota exceeded: project {held.project!r} would use {_amount(used + size)}; "
            f"its quota is {_amount(held.limit)}",
            detail={
                "project": held.project,
                "quota_bytes": held.limit,
                "used_bytes": used,
                "requested_bytes": size,
            },
        )


def _amount(size: int) -> str:
    """`900 bytes`, `1.5 MiB (1572864 bytes)`: exact, and readable when large."""
    return f"{size} bytes" if size < 1024 else f"{human(size)} ({size} bytes)"


def human(size: int) -> str:
    """1536 -> '1.5 KiB' (binary units, as `portside usage` prints them)."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
