"""Hostile and malformed layers: each either fails the scan with LayerRejected (naming
the layer and the reason) or is read safely; none may raise anything else, read the
host's files, or grow memory with the layer."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import tarfile
import threading
import tracemalloc
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.scanning.collectors.osrelease import OsRelease
from portside.scanning.inventory import inventory
from portside.scanning.layers import read_image
from portside.scanning.limits import GiB, LayerRejected, Limits, MiB
from tests.scanning.build import (
    E,
    compress,
    directory,
    file,
    hardlink,
    header,
    image,
    layer,
    symlink,
    tar,
)

DEBIAN = "ID=debian\nVERSION_ID=12\n"
STATUS = "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\nArchitecture: amd64\n"
DIGEST = "sha256:" + "ab" * 32


def rejected(data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(LayerRejected) as caught:
        inventory([(DIGEST, io.BytesIO(data))], limits)
    assert caught.value.layer == DIGEST
    assert str(caught.value).startswith(f"layer {DIGEST} ")
    return caught.value.reason


def zeros_tar(size: int) -> bytes:
    """Files of 256 KiB of zeros: each entry is small, only the layer is large."""
    return tar([file(f"f{n}", bytes(256 * 1024)) for n in range(size // (256 * 1024))])


class _Zeros:
    """A gzip stream of a huge file of zeros, made as it is read (never held whole)."""

    def __init__(self, size: int) -> None:
        info = tarfile.TarInfo("bomb")
        info.size = size
        self._head = info.tobuf(tarfile.PAX_FORMAT)
        self._left = size
        self._gz = zlib.compressobj(9, zlib.DEFLATED, 31)
        self._out = self._gz.compress(self._head)

    def read(self, size: int = -1) -> bytes:
        while len(self._out) < max(size, 1) and self._left:
            step = min(self._left, 8 * MiB)
            self._left -= step
            self._out += self._gz.compress(bytes(step))
            if not self._left:
                self._out += self._gz.compress(bytes(-self._head.__len__() % 512 + 1024))
                self._out += self._gz.flush()
        data, self._out = (
            self._out[: size if size > 0 else None],
            self._out[size if size > 0 else len(self._out) :],
        )
        return data


def test_a_bomb_by_ratio_is_rejected_early_with_bounded_memory() -> None:
    tracemalloc.start()
    try:
        reason = rejected_stream(_Zeros(4 * GiB), Limits(ratio_grace_bytes=16 * MiB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "times its compressed size" in reason
    assert peak < 64 * MiB


def rejected_stream(stream: _Zeros, limits: Limits) -> str:
    with pytest.raises(LayerRejected) as caught:
        read_image([(DIGEST, stream)], [OsRelease()], limits=limits)
    return caught.value.reason


def test_a_bomb_by_bytes_is_rejected_at_the_layer_limit() -> None:
    data = compress(zeros_tar(3 * MiB), "gzip")
    assert "expands past 2.0 MiB" in rejected(data, Limits(max_layer_bytes=2 * MiB))
    data = compress(zeros_tar(3 * MiB), "zstd")
    assert "expands past 2.0 MiB" in rejected(data, Limits(max_layer_bytes=2 * MiB))


def test_an_uncompressed_layer_is_bounded_too() -> None:
    assert "expands past" in rejected(zeros_tar(3 * MiB), Limits(max_layer_bytes=2 * MiB))


def test_a_layer_within_the_limits_is_read() -> None:
    data = compress(tar([file("etc/os-release", DEBIAN), file("pad", bytes(MiB))]), "gzip")
    found = inventory([(DIGEST, io.BytesIO(data))], Limits(max_layer_bytes=2 * MiB))
    assert found.os_id == "debian"


def test_too_many_entries_are_rejected() -> None:
    many = [file(f"f{n}", b"") for n in range(1001)]
    assert "more than 1000 tar entries" in rejected(
        compress(tar(many), "gzip"), Limits(max_entries=1000)
    )
    inventory([(DIGEST, layer(many[:1000]))], Limits(max_entries=1000))


def test_truncated_gzip_is_rejected() -> None:
    data = compress(tar([file("var/lib/dpkg/status", os.urandom(200_000))]), "gzip")
    assert "truncated" in rejected(data[: len(data) // 2])


def test_a_cut_gzip_trailer_is_rejected() -> None:
    data = compress(tar([file("a", b"x")]), "gzip")
    assert "truncated" in rejected(data[:-4])


def test_garbage_after_gzip_is_rejected() -> None:
    data = compress(tar([file("a", b"x")]), "gzip")
    assert "gzip" in rejected(data + b"not gzip at all")


def test_garbage_zstd_is_rejected() -> None:
    assert "zstd" in rejected(b"\x28\xb5\x2f\xfd" + os.urandom(4000))


def test_truncated_zstd_is_rejected() -> None:
    data = compress(tar([file("a", os.urandom(300_000))]), "zstd")
    assert "truncated" in rejected(data[: len(data) // 2])


def test_unknown_compression_is_rejected() -> None:
    assert "neither gzip, zstd nor tar" in rejected(b"BZh91AY&SY" + bytes(600))


def test_compression_is_recognised_by_magic_not_by_name() -> None:
    entries = [file("etc/os-release", DEBIAN)]
    for how in ("gzip", "zstd", "none"):
        assert inventory([(DIGEST, layer(entries, how))]).os_id == "debian"


def test_concatenated_gzip_members_are_one_stream() -> None:
    raw = tar([file("etc/os-release", DEBIAN)])
    data = gzip.compress(raw[:700]) + gzip.compress(raw[700:])
    assert inventory([(DIGEST, io.BytesIO(data))]).os_id == "debian"


def test_negative_and_malformed_sizes_are_rejected() -> None:
    negative = header(size=b"\xff" * 12)
    assert "negative size" in rejected(negative + bytes(1024))
    assert "malformed tar header" in rejected(header(size=b"12z4") + bytes(1024))


def test_a_huge_declared_size_is_rejected_without_reading() -> None:
    huge = header(size=b"\x80" + (2**62).to_bytes(11, "big"))
    assert "more than the layer may hold" in rejected(huge + bytes(1024))


def test_a_huge_pax_header_is_rejected_without_buffering() -> None:
    pax = header(name=b"PaxHeader", typeflag=b"x", size=b"%011o" % (8 * GiB))
    assert "pax header of" in rejected(pax + bytes(1024))
    long_name = header(name=b"././@LongLink", typeflag=b"L", size=b"%011o" % (2 * MiB))
    assert "GNU long name" in rejected(long_name + bytes(1024))


def test_a_bad_checksum_is_rejected() -> None:
    good = tar([file("a", b"x")])
    assert "bad checksum" in rejected(good[:148] + b"0000000\0" + good[156:])


def test_tar_data_cut_short_is_rejected() -> None:
    data = tar([file("var/lib/dpkg/status", b"x" * 5000)])
    assert "truncated" in rejected(data[:2048])


def test_malformed_pax_records_are_rejected() -> None:
    body = b"99 path=x\n"
    pax = header(name=b"PaxHeader", typeflag=b"x", size=b"%011o" % len(body))
    assert "pax header record" in rejected(pax + body.ljust(512, b"\0") + bytes(1024))


def test_paths_climbing_out_are_skipped_with_a_warning() -> None:
    entries = [
        file("../../etc/os-release", "ID=evil\n"),
        file("a/../../../var/lib/dpkg/status", STATUS),
        file("etc/os-release", DEBIAN),
    ]
    found = inventory(image(entries))
    assert found.os_id == "debian"
    assert found.packages == ()
    assert sum("climbs above the root" in w for w in found.warnings) == 2


def test_absolute_paths_are_inside_the_image() -> None:
    found = inventory(
        image([file("/etc/os-release", DEBIAN), file("/var/lib/dpkg/status", STATUS)])
    )
    assert found.os_id == "debian"
    assert [p.name for p in found.packages] == ["zlib1g"]


def test_a_symlink_to_the_hosts_etc_passwd_reads_the_images_file() -> None:
    # The host's /etc/os-release exists on every machine that runs this; a link to it
    # must reach the image's own (absent) file, never the host's.
    found = inventory(image([symlink("etc/os-release", "/etc/../../../usr/lib/os-release")]))
    assert found.os_id is None
    found = inventory(
        image(
            [symlink("etc/os-release", "../../../../etc/passwd"), file("etc/passwd", "ID=image\n")]
        )
    )
    assert found.os_id is None  # etc/passwd is not a file the collectors read
    found = inventory(
        image(
            [
                symlink("etc/os-release", "../../../../usr/lib/os-release"),
                file("usr/lib/os-release", "ID=image\n"),
            ]
        )
    )
    assert found.os_id == "image"


def test_a_symlink_loop_ends_as_not_found() -> None:
    entries = [
        symlink("etc/os-release", "loop-a"),
        symlink("etc/loop-a", "loop-b"),
        symlink("etc/loop-b", "loop-a"),
        symlink("usr/lib/os-release", "/usr/lib/os-release"),
    ]
    assert inventory(image(entries)).os_id is None


def test_a_deep_link_chain_stops_at_the_limit() -> None:
    chain = [symlink(f"l{n}", f"l{n + 1}") for n in range(50)]
    last = symlink("l50", "usr/lib/os-release")
    entries = [*chain, last, file("usr/lib/os-release", DEBIAN), symlink("etc/os-release", "/l0")]
    files = read_image(image(entries), [OsRelease()])
    assert files.resolve("etc/os-release") is None
    assert files.lookup("etc/os-release") is None
    files = read_image(image(entries), [OsRelease()], limits=Limits(max_link_depth=60))
    assert files.resolve("etc/os-release") == "usr/lib/os-release"
    assert files.lookup("etc/os-release") is not None


def test_hardlinks_out_of_the_tree_are_skipped() -> None:
    entries = [hardlink("var/lib/dpkg/status", "../../../../etc/passwd")]
    found = inventory(image(entries))
    assert found.packages == ()
    assert any("hard link" in w for w in found.warnings)
    entries = [hardlink("var/lib/dpkg/status", "/etc/passwd")]  # the image's, never read
    found = inventory(image(entries))
    assert found.packages == ()
    assert any("not read" in w for w in found.warnings)


def test_devices_and_fifos_are_never_read() -> None:
    entries = [
        E("var/lib/dpkg/status", kind="char"),
        E("etc/os-release", kind="fifo"),
        directory("lib/apk/db/installed"),
    ]
    found = inventory(image(entries))
    assert found.packages == ()
    assert found.os_id is None


def test_names_too_long_are_skipped() -> None:
    found = inventory(image([file("d/" * 3000 + "os-release", DEBIAN)]))
    assert any("too long" in w for w in found.warnings)


def test_a_file_over_the_size_limit_is_skipped_with_a_warning() -> None:
    found = inventory(
        image([file("var/lib/dpkg/status", STATUS * 100)]), Limits(max_file_bytes=1000)
    )
    assert found.packages == ()
    assert any("skipped var/lib/dpkg/status" in w for w in found.warnings)


def test_a_collector_that_cannot_parse_a_file_leaves_a_warning() -> None:
    found = inventory(image([file("usr/lib/node_modules/x/package.json", b"{" * 100_000)]))
    assert found.packages == ()
    assert any("could not read usr/lib/node_modules/x/package.json" in w for w in found.warnings)


def test_too_many_layers_are_rejected() -> None:
    layers = image(*[[file("a", b"x")] for _ in range(4)])
    with pytest.raises(LayerRejected, match="more than 3 layers"):
        inventory(layers, Limits(max_layers=3))


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries must be positive"):
        Limits(max_entries=0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.sampled_from(["", "gzip", "zstd", "tar"]))
def test_random_bytes_raise_nothing_but_a_rejection(data: bytes, prefix: str) -> None:
    if prefix == "gzip":
        data = b"\x1f\x8b" + data
    elif prefix == "zstd":
        data = b"\x28\xb5\x2f\xfd" + data
    elif prefix == "tar":
        data = header(name=b"var/lib/dpkg/status", size=b"%011o" % len(data)) + data
    with contextlib.suppress(LayerRejected):
        inventory([(DIGEST, io.BytesIO(data))])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_layers_raise_nothing_but_a_rejection(data: st.DataObject) -> None:
    how = data.draw(st.sampled_from(["gzip", "zstd", "none"]))
    raw = bytearray(
        compress(tar([file("var/lib/dpkg/status", STATUS), symlink("etc/os-release", "x")]), how)
    )
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(LayerRejected):
        inventory([(DIGEST, io.BytesIO(bytes(raw[:cut])))])


def test_a_zstd_window_larger_than_allowed_is_rejected() -> None:
    # A frame declaring a 256 MiB window would make the decoder allocate that much.
    params = zstandard.ZstdCompressionParameters(window_log=28, write_content_size=False)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as w:
        w.write(tar([file("a", b"x" * 1000)]))
    assert zstandard.get_frame_parameters(out.getvalue()).window_size == 256 * MiB
    assert "too much memory" in rejected(out.getvalue())


class _TinyEntries:
    """An uncompressed tar of `count` empty files, made as it is read."""

    def __init__(self, count: int) -> None:
        self._block = header(name=b"usr/share/doc/tiny")
        self._left = count

    def read(self, size: int = -1) -> bytes:
        count = min(self._left, max(size, 512) // 512)
        self._left -= count
        return self._block * count


def test_a_million_tiny_entries_are_capped_by_default() -> None:
    with pytest.raises(LayerRejected, match="more than 1000000 tar entries"):
        read_image([(DIGEST, _TinyEntries(1_000_001))], [OsRelease()])


_EVENTS: list[tuple[str, tuple[object, ...]]] = []
_RECORDING = threading.Event()


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _RECORDING.is_set() and (
        event == "open" or event.startswith(("os.", "shutil.", "tempfile."))
    ):
        _EVENTS.append((event, args))


def test_a_scan_never_touches_the_filesystem(tmp_path: Path) -> None:
    """Python's audit events for every file open and os/shutil/tempfile call stay silent
    while hostile links, traversal and every collector run: the reader has no path to
    the host at all (the hook cannot be removed, so it records only while enabled)."""
    sys.addaudithook(_audit)
    layers = image(
        [
            symlink("etc/os-release", "/etc/os-release"),
            symlink("var/lib/dpkg/status", "../../../../../var/lib/dpkg/status"),
            hardlink("lib/apk/db/installed", "../../../../etc/passwd"),
            file("../../../../tmp/evil", b"x"),
            file(str(tmp_path / "absolute"), b"x"),
            file("usr/lib/os-release", DEBIAN),
            file("var/lib/dpkg/status.d/a", STATUS),
            file("app/node_modules/a/package.json", '{"name":"a","version":"1"}'),
            file("app/a.jar", b"PK\x05\x06" + bytes(18)),
            file("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0" + bytes(100)),
            file("bin/tool", b"\x7fELF" + bytes(100), mode=0o755),
        ],
        [file("usr/lib/python3/x.dist-info/METADATA", "Name: x\nVersion: 1\n")],
    )
    _RECORDING.set()
    try:
        found = inventory(layers)
    finally:
        _RECORDING.clear()
    assert _EVENTS == []
    assert not (tmp_path / "absolute").exists()
    assert sorted(p.name for p in found.packages) == ["a", "x", "zlib1g"]


def test_kept_links_and_records_are_bounded_by_bytes() -> None:
    links = [symlink(f"usr/share/l{n}", "x" * 100) for n in range(100)]
    found = inventory(image([file("etc/os-release", DEBIAN), *links]), Limits(max_kept_bytes=2000))
    assert any("of links and package records: later ones" in w for w in found.warnings)
    assert found.os_id == "debian"
    manifests = [
        file(f"app/node_modules/p{n}/package.json", f'{{"name":"p{n}","version":"1"}}')
        for n in range(10)
    ]
    found = inventory(image(manifests), Limits(max_kept_bytes=2000))
    assert 0 < len(found.packages) < 10
    assert any("of links and package records: later ones" in w for w in found.warnings)
    hardlinks = [hardlink(f"app/node_modules/p{n}/package.json", "p.json") for n in range(1000)]
    found = inventory(image([symlink("p.json", "x"), *hardlinks]), Limits(max_kept_bytes=20_000))
    assert any("of links and package records: later ones" in w for w in found.warnings)


def test_pax_records_other_than_path_and_size_are_not_kept() -> None:
    blocks = []
    for number in range(40):  # distinct keys in each header: none overwrites another
        body = b"".join(_pax_record(f"xattr.k{number}.{n}", "v" * 900) for n in range(1000))
        pax = header(name=b"PaxHeader", typeflag=b"x", size=b"%011o" % len(body))
        blocks.append(pax + body.ljust(-(-len(body) // 512) * 512, b"\0"))
    data = b"".join(blocks) + tar([file("etc/os-release", DEBIAN)])
    tracemalloc.start()
    try:
        found = inventory([(DIGEST, io.BytesIO(data))])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.os_id == "debian"
    assert peak < len(data) // 2  # 36 MB of records never held together


def _pax_record(key: str, value: str) -> bytes:
    rest = f" {key}={value}\n".encode()
    length = len(rest) + len(str(len(rest)))
    if len(str(length)) != len(str(len(rest))):
        length += 1
    return str(length).encode() + rest


def test_deep_paths_and_repeated_whiteouts_stay_cheap() -> None:
    deep = "/".join(["d"] * 1000)
    lower = [symlink(f"{deep}/l{n}", "x") for n in range(200)]
    upper = [file(f"{deep}/.wh.l{n % 200}", b"") for n in range(5000)]
    upper += [file("d/.wh..wh..opq", b"") for _ in range(1000)]
    files = read_image(image(lower, upper), [OsRelease()])
    assert files.files == {}


def test_the_whole_image_is_bounded_too() -> None:
    layers = image(*[[file(f"f{n}", os.urandom(300 * 1024))] for n in range(4)])
    with pytest.raises(
        LayerRejected, match=r"takes the image past 1\.0 MiB uncompressed"
    ) as caught:
        inventory(layers, Limits(max_image_bytes=1 * MiB))
    assert caught.value.layer == layers[3][0]
