"""Reading a source's files into Advisories, one record at a time (memory stays bounded
however big the export, apart from a zip's directory, which zipfile keeps as one small
object per member): an OSV record file, an OSV JSON array, a directory of OSV
files, an OSV ecosystem zip export (https://osv-vulnerabilities.storage.googleapis.com/
<ecosystem>/all.zip), or the Debian security tracker's JSON. `detect` tells which.

Every problem is a FeedError naming the file (and the zip member) and what is wrong.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from portside.vulndb import debian, osv
from portside.vulndb.model import Advisory

Format = Literal["osv", "debian-tracker"]
MAX_RECORD_BYTES = 16 * 1024 * 1024  # one OSV record; the largest real ones are ~1 MB
# Every top-level field of an OSV record (https://ossf.github.io/osv-schema/); the
# tracker's top-level keys are source package names.
_OSV_KEYS = frozenset(
    {
        "schema_version",
        "id",
        "modified",
        "published",
        "withdrawn",
        "aliases",
        "upstream",
        "related",
        "summary",
        "details",
        "severity",
        "affected",
        "references",
        "credits",
        "database_specific",
    }
)


class FeedError(ValueError):
    """A source that cannot be read; the message starts with the file."""


def first_line(error: Exception) -> str:
    """The first line of a JSON parser's message (yajl's adds a drawing of the spot)."""
    return str(error).strip().split("\n", 1)[0]


def detect(path: Path) -> Format:
    """Which format `path` holds (a directory or zip is OSV)."""
    if path.is_dir():
        return "osv"
    try:
        if path.stat().st_size == 0:
            raise FeedError(f"{path}: empty file")
        if zipfile.is_zipfile(path):
            return "osv"
        with path.open("rb") as stream:
            return _detect_json(stream, path)
    except OSError as error:
        raise FeedError(f"{path}: cannot read: {error.strerror}") from None


def _detect_json(stream: IO[bytes], where: Path | str) -> Format:
    import ijson

    try:
        events = ijson.parse(stream)
        _prefix, first, _value = next(events)
        if first == "start_array":
            return "osv"
        if first != "start_map":
            raise FeedError(f"{where}: neither an OSV record nor the Debian tracker's JSON")
        _prefix, kind, key = next(events)
    except ijson.JSONError as error:
        raise FeedError(f"{where}: not valid JSON: {first_line(error)}") from None
    except StopIteration:
        raise FeedError(f"{where}: empty file") from None
    if kind == "map_key" and key in _OSV_KEYS:
        return "osv"
    return "debian-tracker"


def advisories(path: Path, fmt: Format | None = None) -> Iterator[Advisory]:
    """Every advisory in `path` (withdrawn OSV records left out)."""
    fmt = fmt or detect(path)
    if fmt == "debian-tracker":
        try:
            with path.open("rb") as stream:
                yield from debian.advisories(stream)
        except debian.TrackerError as error:
            raise FeedError(f"{path}: {error}") from None
        except OSError as error:
            raise FeedError(f"{path}: cannot read: {error.strerror}") from None
        return
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise FeedError(f"{path}: no .json files in this directory")
        for file in files:
            yield from _osv_file(file)
    elif zipfile.is_zipfile(path):
        yield from _osv_zip(path)
    else:
        yield from _osv_file(path)


def _record(data: object, where: str) -> Advisory | None:
    try:
        return osv.advisory(data)
    except osv.OsvError as error:
        raise FeedError(f"{where}: {error}") from None


def _osv_zip(path: Path) -> Iterator[Advisory]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if m.filename.endswith(".json")]
            if not members:
                raise FeedError(f"{path}: no .json files in this zip")
            for member in members:
                where = f"{path}!{member.filename}"
                if member.file_size > MAX_RECORD_BYTES:
                    raise FeedError(f"{where}: larger than {MAX_RECORD_BYTES} bytes")
                with archive.open(member) as stream:
                    data = stream.read(MAX_RECORD_BYTES + 1)
                found = _record(_json(data, where), where)
                if found is not None:
                    yield found
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        raise FeedError(f"{path}: not a readable zip: {error}") from None
    except OSError as error:
        raise FeedError(f"{path}: cannot read: {error.strerror or error}") from None


def _json(data: bytes, where: str) -> object:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FeedError(f"{where}: not valid JSON: {error}") from None


def _osv_file(path: Path) -> Iterator[Advisory]:
    import ijson

    where = str(path)
    try:
        with path.open("rb") as stream:
            head = stream.read(64).lstrip()
            stream.seek(0)
            if head.startswith(b"["):  # a JSON array of records, read one at a time
                try:
                    for index, item in enumerate(ijson.items(stream, "item", use_float=True)):
                        found = _record(item, f"{where}[{index}]")
                        if found is not None:
                            yield found
                except ijson.JSONError as error:
                    raise FeedError(f"{where}: not valid JSON: {first_line(error)}") from None
                return
            data = stream.read(MAX_RECORD_BYTES + 1)
    except OSError as error:
        raise FeedError(f"{where}: cannot read: {error.strerror}") from None
    if len(data) > MAX_RECORD_BYTES:
        raise FeedError(f"{where}: an OSV record larger than {MAX_RECORD_BYTES} bytes")
    found = _record(_json(data, where), where)
    if found is not None:
        yield found
