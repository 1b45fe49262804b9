"""The configured sources (`vulndb.sources`), imported only when they changed.

A URL is fetched with a conditional GET through portside.egress (SSRF-safe, with the
`vulndb.allow_private_sources` / `vulndb.allowed_networks` policy) into a temporary
file under the data directory, then imported; its fingerprint is its ETag, else its
Last-Modified. A path's fingerprint is its modification time and size (for a
directory: a digest of every .json file's name, time and size). A source whose
fingerprint equals the one recorded at its last import is skipped.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from portside import egress
from portside.config import Settings, VulndbSourceSettings
from portside.metadata.db import Database
from portside.vulndb.feeds import FeedError
from portside.vulndb.importer import ImportResult, Progress, import_path
from portside.vulndb.store import fingerprint_of

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    source: str
    state: str  # "imported", "unchanged" or "failed"
    detail: str = ""
    result: ImportResult | None = None


def path_fingerprint(path: Path) -> str:
    """mtime+size of a file; a digest of every .json file's (name, mtime, size) in a
    directory."""
    try:
        if not path.is_dir():
            info = path.stat()
            return f"mtime={info.st_mtime_ns};size={info.st_size}"
        digest = hashlib.sha256()
        for file in sorted(path.rglob("*.json")):
            info = file.stat()
            digest.update(
                f"{file.relative_to(path)}\0{info.st_mtime_ns}\0{info.st_size}\n".encode()
            )
        return f"tree={digest.hexdigest()}"
    except OSError as error:
        raise FeedError(f"{path}: cannot read: {error.strerror}") from None


def _policy(settings: Settings) -> egress.EgressPolicy:
    vulndb = settings.vulndb
    return egress.policy_from(
        allow_private=vulndb.allow_private_sources,
        allowed_networks=vulndb.allowed_networks,
        timeout_seconds=vulndb.timeout_seconds,
        max_redirects=3,
    )


def _conditional(fingerprint: str | None) -> dict[str, str]:
    if fingerprint and fingerprint.startswith("etag="):
        return {"If-None-Match": fingerprint.removeprefix("etag=")}
    if fingerprint and fingerprint.startswith("last-modified="):
        return {"If-Modified-Since": fingerprint.removeprefix("last-modified=")}
    return {}


def import_source(
    db: Database,
    settings: Settings,
    source: VulndbSourceSettings,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> Outcome:
    """Import one configured source if it changed (or `force`). Never raises for a
    source's own failure (bad URL, refused target, bad content): that is the Outcome."""
    name = source.name
    known = None if force else fingerprint_of(db, name)
    fmt = None if source.format == "auto" else source.format
    try:
        if source.path is not None:
            path = Path(source.path)
            fingerprint = path_fingerprint(path)
            if fingerprint == known:
                return Outcome(name, "unchanged")
            result = import_path(
                db, path, source=name, fmt=fmt, fingerprint=fingerprint, progress=progress
            )
            return Outcome(name, "imported", result=result)
        assert source.url is not None
        temp_dir = settings.data_dir / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=temp_dir, prefix="vulndb-", suffix=".download"
        ) as sink:
            got = egress.download(
                _policy(settings),
                source.url,
                sink,  # type: ignore[arg-type]  # a binary temporary file
                headers=_conditional(known),
                max_bytes=settings.vulndb.max_download_bytes,
            )
            if got.status == 304:
                return Outcome(name, "unchanged", "not modified")
            if got.status != 200:
                text = got.error[:200].decode("utf-8", "replace")
                return Outcome(name, "failed", f"{source.url} answered {got.status}: {text}")
            sink.flush()
            os.fsync(sink.fileno())
            remote: str | None = (
                f"etag={got.etag}"
                if got.etag
                else f"last-modified={got.last_modified}"
                if got.last_modified
                else None
            )
            if remote is not None and remote == known:
                return Outcome(name, "unchanged")
            try:
                result = import_path(
                    db, Path(sink.name), source=name, fmt=fmt, fingerprint=remote, progress=progress
                )
            except FeedError as error:  # name the URL, not the temporary file
                raise FeedError(str(error).replace(sink.name, source.url)) from None
            return Outcome(name, "imported", result=result)
    except FeedError as error:
        return Outcome(name, "failed", str(error))
    except egress.Refused as error:
        return Outcome(name, "failed", f"{source.url}: refused: {error}")
    except (httpx.HTTPError, egress.TooLarge) as error:
        return Outcome(name, "failed", f"{source.url}: download failed: {error}")
