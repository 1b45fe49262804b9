"""What a collector is and what it returns.

A file collector names the files it reads by one regular expression on the normalised
path ("var/lib/dpkg/status"; no leading slash), so the layer reader can decide from a
tar header alone whether an entry is read or skipped. It gets the file's bytes (at most
`Limits.max_file_bytes`) and returns `Found`: package drafts, and for os-release the
parsed fields. A stream collector (Go binaries) instead asks for files by header
(executable, size) and is fed their bytes chunk by chunk, keeping only what it needs.

Drafts are packages before the image's OS is known; `purl.finish` turns them into
`Package`s with the OSV ecosystem and package URL, in one place for every collector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from portside.scanning.limits import Limits


@dataclass(frozen=True, slots=True)
class Draft:
    """One package as its package manager records it."""

    kind: str  # purl type: deb, apk, rpm, pypi, npm, golang, maven
    name: str
    version: str
    arch: str | None = None
    epoch: str | None = None  # rpm
    source_name: str | None = None
    source_version: str | None = None
    licenses: tuple[str, ...] = ()
    namespace: str | None = None  # npm scope, maven group id


@dataclass(frozen=True, slots=True)
class Found:
    """What one file held."""

    drafts: tuple[Draft, ...] = ()
    os_release: tuple[tuple[str, str], ...] | None = None
    warnings: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()  # a Debian copyright file's, for the package it documents


class FileCollector(Protocol):
    pattern: str  # re.fullmatch against the normalised path

    def collect(self, path: str, data: bytes, limits: Limits) -> Found: ...


class StreamScan(Protocol):
    def feed(self, chunk: bytes) -> bool:
        """Take the next bytes; False when nothing more is needed (the rest is skipped)."""

    def finish(self) -> Found: ...


class StreamCollector(Protocol):
    def wants(self, path: str, mode: int, size: int, limits: Limits) -> bool: ...

    def start(self, path: str, limits: Limits) -> StreamScan: ...
