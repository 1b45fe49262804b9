"""Reading an image's layers as the container would see its filesystem, safely.

Layers are applied in order, as OCI image-spec layer.md says, but nothing is extracted:
the reader keeps a virtual tree of only what the collectors asked for (their parsed
results, never file bytes once parsed) and the symbolic links (to resolve paths such as
etc/os-release -> ../usr/lib/os-release at the end). Everything else is skipped while
the layer streams past, so each layer is read once, start to end.

Whiteouts (they only ever hide what LOWER layers wrote; the same layer's entries stay,
whatever their order in the tar):
- `dir/.wh.name` hides `dir/name` and everything under it;
- `dir/.wh..wh..opq` (opaque directory) hides every child of `dir`;
- any other `.wh..wh.*` entry (aufs metadata) is ignored;
- an entry that is not a directory hides the lower entry at its path and, if that was a
  directory, everything under it; a directory entry hides a lower non-directory.

Hostile content: entry names are normalised (`.`, `//` collapsed, a leading `/` means
the image root); a name whose `..` climbs above the root, or longer than
`max_path_bytes`, is skipped with a warning. Links are only ever resolved inside the
virtual tree (a `..` at its root stays at its root, as in a chroot), for at most
`max_link_depth` hops, so a link to /etc/passwd reads the image's file, never the
host's, and a loop ends as "not found". Hard links must name an entry already seen (in
this layer or below). Devices, fifos and unknown entry types are never read. The host
filesystem is never touched: the reader has no path to it.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from portside.scanning.collectors.base import FileCollector, Found, StreamCollector
from portside.scanning.limits import LayerRejected, Limits
from portside.scanning.streams import ByteSource, LayerStream
from portside.scanning.tar import Kind, TarEntry, TarReader
from portside.units import format_size

MAX_WARNINGS = 100
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True, slots=True)
class FileResult:
    layer: str  # the digest of the layer that last wrote the file
    found: Found


@dataclass(frozen=True, slots=True)
class Link:
    target: str  # as recorded: relative to the link's directory, or absolute


def normalise(name: str) -> str | None:
    """The path inside the image ("" for its root), or None if it climbs above it."""
    if not name.startswith(("/", ".")) and "/." not in name and "//" not in name:
        return name[:-1] if name.endswith("/") else name  # already normal: most names
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


@dataclass
class ImageFiles:
    """What the collectors found in the image's final filesystem, by path."""

    files: dict[str, FileResult | Link] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    max_link_depth: int = 40

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("more warnings were left out")

    def results(self) -> list[tuple[str, FileResult]]:
        return sorted((p, r) for p, r in self.files.items() if isinstance(r, FileResult))

    def resolve(self, path: str) -> str | None:
        """`path` with every symbolic link in it followed inside the image; None when
        the links loop or nest deeper than `max_link_depth`."""
        pending = deque(path.split("/"))
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            done.append(part)
            node = self.files.get("/".join(done))
            if isinstance(node, Link):
                hops += 1
                if hops > self.max_link_depth:
                    return None
                done.pop()
                if node.target.startswith("/"):
                    done.clear()
                pending.extendleft(reversed(node.target.split("/")))
        return "/".join(done)

    def lookup(self, path: str) -> FileResult | None:
        resolved = self.resolve(path)
        node = self.files.get(resolved) if resolved is not None else None
        return node if isinstance(node, FileResult) else None


class _Lower:
    """What the layers below the one being read left, with subtree deletion in
    O(log n + deleted): `keys` is kept sorted (a stale key, whose file went already,
    is only ever skipped), and a deleted range leaves it, so each key costs one
    deletion at most, whatever a hostile layer repeats. No ancestor directories are
    stored: memory stays proportional to the kept paths, however deep they are."""

    def __init__(self, files: dict[str, FileResult | Link], keys: list[str]) -> None:
        self.files = files
        self.keys = keys

    def hide(self, path: str, *, itself: bool = True) -> None:
        if itself:
            self.files.pop(path, None)
        prefix = path + "/" if path else ""
        low = high = bisect.bisect_left(self.keys, prefix)
        while high < len(self.keys) and self.keys[high].startswith(prefix):
            self.files.pop(self.keys[high], None)
            high += 1
        if high > low:
            del self.keys[low:high]

    def merge(self, current: dict[str, FileResult | Link]) -> None:
        """Add the finished layer's entries (sorting merges the two sorted runs)."""
        new = sorted(k for k in current if k not in self.files)
        self.files.update(current)
        self.keys.extend(new)
        self.keys.sort()  # two sorted runs: a linear merge


class _Reader:
    def __init__(
        self,
        collectors: Sequence[FileCollector],
        scanners: Sequence[StreamCollector],
        limits: Limits,
    ) -> None:
        self.collectors = collectors
        self.scanners = scanners
        self.limits = limits
        self.pattern = re.compile(
            "|".join(f"(?P<c{i}>{c.pattern})" for i, c in enumerate(collectors)) or "(?!)"
        )
        self.image = ImageFiles(max_link_depth=limits.max_link_depth)
        self.keys: list[str] = []  # of image.files, sorted
        self.kept = 0  # estimated bytes of links and results in image.files
        self.kept_full = False
        self.expanded = 0  # bytes of every layer read before this one

    def layer(self, digest: str, source: ByteSource) -> None:
        lower = _Lower(self.image.files, self.keys)
        current: dict[str, FileResult | Link] = {}
        stream = LayerStream(source, self.limits)
        tar = TarReader(stream, self.limits)
        while (entry := tar.next()) is not None:
            self._entry(digest, entry, tar, lower, current)
        stream.drain()
        lower.merge(current)
        self.expanded += stream.expanded
        if self.expanded > self.limits.max_image_bytes:
            limit = format_size(self.limits.max_image_bytes)
            raise LayerRejected(f"takes the image past {limit} uncompressed")

    def _entry(
        self,
        digest: str,
        entry: TarEntry,
        tar: TarReader,
        lower: _Lower,
        current: dict[str, FileResult | Link],
    ) -> None:
        if len(entry.name) * 4 > self.limits.max_path_bytes and (
            len(entry.name.encode()) > self.limits.max_path_bytes
        ):
            self.image.warn(f"layer {digest}: skipped an entry whose name is too long")
            return
        path = normalise(entry.name)
        if path is None:
            self.image.warn(f"layer {digest}: skipped {entry.name!r}: it climbs above the root")
            return
        directory, _, base = path.rpartition("/")
        if base.startswith(WHITEOUT):
            if base == OPAQUE:
                lower.hide(directory, itself=False)
            elif not base.startswith(WHITEOUT + WHITEOUT):
                lower.hide(f"{directory}/{base[4:]}" if directory else base[4:])
            return
        if entry.kind is Kind.DIR:
            lower.files.pop(path, None)  # a lower file or link at this path is replaced
            return
        lower.hide(path)
        current.pop(path, None)
        if entry.kind is Kind.SYMLINK:
            self._symlink(path, entry.linkname, current)
        elif entry.kind is Kind.HARDLINK:
            self._hardlink(digest, path, entry.linkname, lower, current)
        elif entry.kind is Kind.FILE:
            self._file(digest, path, entry, tar, current)

    def _keep(self, path: str, *, link: str = "", found: Found | None = None) -> bool:
        """Whether one more link or file result fits the image's `max_kept_bytes` (an
        estimate of what it holds in memory); the first refusal leaves a warning."""
        size = 128 + len(path) + len(link)
        if found is not None:
            size += (
                sum(map(len, found.warnings))
                + sum(map(len, found.licenses))
                + sum(
                    160 + len(d.name) + len(d.version) + sum(map(len, d.licenses))
                    for d in found.drafts
                )
            )
        if self.kept + size > self.limits.max_kept_bytes:
            if not self.kept_full:
                self.kept_full = True
                self.image.warn(
                    f"more than {format_size(self.limits.max_kept_bytes)} of links and package "
                    "records: later ones are left out"
                )
            return False
        self.kept += size
        return True

    def _symlink(self, path: str, target: str, current: dict[str, FileResult | Link]) -> None:
        if len(target.encode()) > self.limits.max_path_bytes:
            self.image.warn(f"skipped the symbolic link {path}: its target is too long")
        elif self._keep(path, link=target):
            current[path] = Link(target)

    def _hardlink(
        self,
        digest: str,
        path: str,
        linkname: str,
        lower: _Lower,
        current: dict[str, FileResult | Link],
    ) -> None:
        target = normalise(linkname)
        if target is None:
            self.image.warn(
                f"layer {digest}: skipped the hard link {path}: its target climbs above the root"
            )
            return
        node = current.get(target, lower.files.get(target))
        if isinstance(node, FileResult):
            if self._keep(path, found=node.found):
                current[path] = FileResult(digest, node.found)
        elif isinstance(node, Link):
            self._symlink(path, node.target, current)  # the same link text, at a new place
        elif self.pattern.fullmatch(path):
            self.image.warn(
                f"layer {digest}: {path} is a hard link to {target}, which was not read"
            )

    def _file(
        self,
        digest: str,
        path: str,
        entry: TarEntry,
        tar: TarReader,
        current: dict[str, FileResult | Link],
    ) -> None:
        match = self.pattern.fullmatch(path)
        if match is not None and match.lastgroup is not None:
            collector = self.collectors[int(match.lastgroup[1:])]
            if entry.size > self.limits.max_file_bytes:
                self.image.warn(
                    f"skipped {path} ({format_size(entry.size)}, more than "
                    f"{format_size(self.limits.max_file_bytes)})"
                )
                return
            found = _guarded(path, lambda: collector.collect(path, tar.data(), self.limits))
            if self._keep(path, found=found):
                current[path] = FileResult(digest, found)
            return
        for scanner in self.scanners:
            if scanner.wants(path, entry.mode, entry.size, self.limits):
                scan = scanner.start(path, self.limits)
                for chunk in tar.chunks():
                    if not scan.feed(chunk):
                        break
                found = _guarded(path, scan.finish)
                if (found.drafts or found.warnings) and self._keep(path, found=found):
                    current[path] = FileResult(digest, found)
                return


def _guarded(path: str, collect: Callable[[], Found]) -> Found:
    """A collector's result; a file it cannot parse becomes a warning, not a failed scan
    (LayerRejected from reading the layer itself still propagates)."""
    try:
        return collect()
    except LayerRejected:
        raise
    except Exception as e:  # a hostile file must never end the scan with a traceback
        return Found(warnings=(f"could not read {path}: {type(e).__name__}: {e}",))


def read_image(
    layers: Iterable[tuple[str, ByteSource]],
    collectors: Sequence[FileCollector],
    scanners: Sequence[StreamCollector] = (),
    limits: Limits | None = None,
) -> ImageFiles:
    """Apply `layers` (digest, stream of the blob), lowest first; LayerRejected (naming
    the layer) if one is hostile or malformed."""
    reader = _Reader(collectors, scanners, limits or Limits())
    for number, (digest, source) in enumerate(layers, 1):
        if number > reader.limits.max_layers:
            raise LayerRejected(f"the image has more than {reader.limits.max_layers} layers")
        try:
            reader.layer(digest, source)
        except LayerRejected as e:
            raise e.for_layer(digest) from None
    return reader.image
