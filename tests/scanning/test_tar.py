"""The tar reader against Python's tarfile as the oracle: archives tarfile writes (ustar,
GNU and pax formats; long and non-ASCII names, links, directories, base-256 sizes) read
back with the same names, kinds, sizes and data."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings
from hypothesis import strategies as st

from portside.scanning.limits import Limits
from portside.scanning.tar import Kind, TarReader

KINDS = {
    tarfile.REGTYPE: Kind.FILE,
    tarfile.DIRTYPE: Kind.DIR,
    tarfile.SYMTYPE: Kind.SYMLINK,
    tarfile.LNKTYPE: Kind.HARDLINK,
    tarfile.FIFOTYPE: Kind.OTHER,
}
segment = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\0"),
    min_size=1,
    max_size=60,
)
entry = st.tuples(
    st.lists(segment, min_size=1, max_size=5).map("/".join),
    st.sampled_from(list(KINDS)),
    st.binary(max_size=1500),
    st.lists(segment, min_size=1, max_size=3).map("/".join),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(entry, max_size=8),
    st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
)
def test_what_tarfile_writes_reads_back_the_same(
    entries: list[tuple[str, bytes, bytes, str]], fmt: int
) -> None:
    out = io.BytesIO()
    written: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding="utf-8") as archive:
        for name, kind, data, link in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o755
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = link
            try:
                if kind == tarfile.REGTYPE:
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
                else:
                    archive.addfile(info)
            except ValueError:  # ustar cannot hold this name: tarfile refuses it
                continue
            written.append((info, data))
    reader = TarReader(io.BytesIO(out.getvalue()), Limits())
    for info, data in written:
        got = reader.next()
        assert got is not None
        assert got.name.rstrip("/") == info.name.rstrip("/")
        assert got.kind is KINDS[info.type]
        if info.type == tarfile.REGTYPE:
            assert got.size == info.size
            assert got.mode == 0o755
            assert reader.data() == data
        if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            assert got.linkname == info.linkname
    assert reader.next() is None


def test_base_256_sizes_and_data_read_back() -> None:
    out = io.BytesIO()
    data = b"x" * 3000
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("f")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    raw = bytearray(out.getvalue())
    raw[124:136] = b"\x80" + len(data).to_bytes(11, "big")  # the same size in base-256
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    reader = TarReader(io.BytesIO(bytes(raw)), Limits())
    got = reader.next()
    assert got is not None
    assert got.size == 3000
    assert reader.data() == data
    assert reader.next() is None
