"""Go modules compiled into executables, from the build info the Go linker embeds
(Go 1.18 and later; debug/buildinfo in the Go sources describes it):

    "\\xff Go buildinf:"   14 bytes of magic, 16-byte aligned in the file
    ptrSize (1 byte), flags (1 byte; 0x2: strings inline), 16 bytes unused
    uvarint length + Go version ("go1.21.5")
    uvarint length + module info, 16 sentinel bytes at each end, lines:
        path <tab> cmd path          mod <tab> path <tab> version <tab> sum
        dep <tab> path <tab> version <tab> sum
        => <tab> path <tab> version <tab> sum     (replaces the dep above)
        build <tab> key=value

Only executables (mode has an x bit) up to `max_binary_bytes` that start with the ELF
magic are scanned, as they stream past: at most the magic's length plus the build info
(capped at MAX_INFO) is held. Older binaries (pointer-based format) get a warning.
"""

from __future__ import annotations

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits

MAGIC = b"\xff Go buildinf:"
HEADER = 32
MAX_INFO = 1024 * 1024
FLAG_INLINE = 0x2
ELF = b"\x7fELF"


class _More:
    """Not enough bytes yet."""


MORE = _More()


def _uvarint(buf: bytes, pos: int) -> tuple[int, int] | _More | None:
    value = shift = 0
    for i in range(10):
        if pos + i >= len(buf):
            return MORE
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + i + 1
        shift += 7
    return None


def _string(buf: bytes, pos: int) -> tuple[bytes, int] | _More | None:
    got = _uvarint(buf, pos)
    if not isinstance(got, tuple):
        return got
    length, start = got
    if length > MAX_INFO:
        return None
    if start + length > len(buf):
        return MORE
    return buf[start : start + length], start + length


def parse_build_info(buf: bytes) -> tuple[str, str] | _More | None:
    """(Go version, module info) from bytes starting at the magic; MORE if they are
    cut short, None if this is no inline build info."""
    if len(buf) < HEADER:
        return MORE
    if buf[14] not in (4, 8) or not buf[15] & FLAG_INLINE:
        return None
    version = _string(buf, HEADER)
    if not isinstance(version, tuple):
        return version
    module = _string(buf, version[1])
    if not isinstance(module, tuple):
        return module
    info = module[0]
    if len(info) >= 33 and info[-17] == ord("\n"):
        info = info[16:-16]
    return version[0].decode("utf-8", "replace"), info.decode("utf-8", "replace")


def drafts(go_version: str, info: str) -> tuple[Draft, ...]:
    found: list[Draft] = []
    stdlib = (go_version.split(maxsplit=1) or [""])[0]
    if stdlib.startswith("go1"):
        found.append(Draft(kind="golang", name="stdlib", version=stdlib.removeprefix("go")))
    for line in info.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0] not in ("mod", "dep", "=>"):
            continue
        path, version = fields[1], fields[2]
        if not path or not version or version == "(devel)":
            if fields[0] == "=>" and found:
                found.pop()  # replaced by a local directory: no module version
            continue
        draft = Draft(kind="golang", name=path, version=version)
        if fields[0] == "=>" and found and found[-1].name != "stdlib":
            found[-1] = draft
        else:
            found.append(draft)
    return tuple(found)


class GoScan:
    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0  # of buf[0] in the file
        self.buf = b""
        self.started = False
        self.old_format = False
        self.found: Found | None = None

    def feed(self, chunk: bytes) -> bool:
        if not self.started:
            self.started = True
            if not chunk.startswith(ELF):
                return False
        self.buf += chunk
        return self._search(final=False)

    def _search(self, *, final: bool) -> bool:
        while True:
            at = self.buf.find(MAGIC)
            if at < 0:
                drop = max(0, len(self.buf) - len(MAGIC) + 1)
                self.offset, self.buf = self.offset + drop, self.buf[drop:]
                return True
            self.offset, self.buf = self.offset + at, self.buf[at:]
            parsed = parse_build_info(self.buf) if self.offset % 16 == 0 else None
            if parsed is MORE and not final and len(self.buf) < HEADER + 2 * MAX_INFO:
                return True
            if isinstance(parsed, tuple):
                self.found = Found(drafts=drafts(*parsed))
                return False
            if len(self.buf) >= HEADER and self.offset % 16 == 0 and self.buf[14] in (4, 8):
                self.old_format = self.old_format or not self.buf[15] & FLAG_INLINE
            self.offset, self.buf = self.offset + 1, self.buf[1:]

    def finish(self) -> Found:
        if self.found is None and self.buf:
            self._search(final=True)
        if self.found is not None:
            return self.found
        if self.old_format:
            return Found(warnings=(f"{self.path}: Go binary built before Go 1.18: not read",))
        return Found()


class GoBinaries:
    def wants(self, path: str, mode: int, size: int, limits: Limits) -> bool:
        return bool(mode & 0o111) and HEADER <= size <= limits.max_binary_bytes

    def start(self, path: str, limits: Limits) -> GoScan:
        return GoScan(path)
