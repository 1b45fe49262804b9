"""The StorageDriver conformance suite: every driver must pass every test here.

Tests are written against the `StorageDriver` Protocol only. To add a driver (S3, ...),
add a factory to DRIVER_FACTORIES; each test then runs once per driver.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.config import load_settings
from portside.storage.base import FileInfo, InvalidPath, PathNotFound, StorageDriver
from portside.storage.filesystem import FilesystemDriver
from portside.storage.s3 import S3Driver
from tests.s3server import MotoServer, s3_settings

# A factory gets the test's request and tmp_path and yields an empty driver private to the
# test; code after the yield cleans up.
DriverFactory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[StorageDriver]]

# Small enough that the hypothesis appends below cross part boundaries on S3.
S3_PART_SIZE = 5 * 1024 * 1024


@contextmanager
def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageDriver]:
    yield FilesystemDriver(tmp_path / "storage-root")


@contextmanager
def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageDriver]:
    """A fresh bucket on the session's moto server (a real S3 API server), under a key
    prefix so that every path is prefix-relative."""
    server: MotoServer = request.getfixturevalue("s3_server")
    settings = load_settings(
        data_dir=tmp_path,
        storage=s3_settings(server, server.new_bucket(), prefix="root/dir", part_size=S3_PART_SIZE),
    )
    yield S3Driver(settings.storage.s3)


DRIVER_FACTORIES: dict[str, DriverFactory] = {
    "filesystem": _filesystem,
    "s3": _s3,
}


@pytest.fixture(
    params=[
        # The S3 runs need no database: the PostgreSQL pass of scripts/test skips them.
        pytest.param(name, marks=pytest.mark.s3) if name == "s3" else name
        for name in sorted(DRIVER_FACTORIES)
    ]
)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageDriver]:
    with DRIVER_FACTORIES[request.param](request, tmp_path) as created:
        yield created


def _write(driver: StorageDriver, path: str, data: bytes, *, append: bool) -> int:
    writer = driver.writer(path, append=append)
    try:
        writer.write(data)
        return writer.size
    finally:
        writer.close()


# -- put / get --------------------------------------------------------------------------


def test_put_get_round_trip(driver: StorageDriver) -> None:
    data = bytes(range(256)) * 100
    driver.put("a/b/c", data)
    assert driver.get("a/b/c") == data
    assert driver.exists("a/b/c")


def test_put_empty_file(driver: StorageDriver) -> None:
    driver.put("empty", b"")
    assert driver.get("empty") == b""
    assert driver.stat("empty").size == 0


def test_put_replaces_atomically(driver: StorageDriver) -> None:
    driver.put("dir/file", b"first version, longer")
    driver.put("dir/file", b"second")
    assert driver.get("dir/file") == b"second"
    # No temporary files are left behind next to the file.
    assert driver.list("dir") == ["dir/file"]
    assert [info.path for info in driver.walk("dir")] == ["dir/file"]


# -- missing paths ----------------------------------------------------------------------


MISSING_OPERATIONS: dict[str, Callable[[StorageDriver], object]] = {
    "get": lambda d: d.get("no/such/file"),
    "reader": lambda d: d.reader("no/such/file"),
    "reader-offset": lambda d: d.reader("no/such/file", 10),
    "stat": lambda d: d.stat("no/such/file"),
    "delete": lambda d: d.delete("no/such/file"),
    "move": lambda d: d.move("no/such/file", "elsewhere/file"),
    "list": lambda d: d.list("no/such/dir"),
}


@pytest.mark.parametrize("operation", sorted(MISSING_OPERATIONS))
def test_missing_path_raises_path_not_found(driver: StorageDriver, operation: str) -> None:
    driver.put("other/file", b"x")  # the store is not empty
    with pytest.raises(PathNotFound) as raised:
        MISSING_OPERATIONS[operation](driver)
    assert raised.value.path.startswith("no/such/")


def test_missing_under_existing_file_raises_path_not_found(driver: StorageDriver) -> None:
    driver.put("file", b"x")
    with pytest.raises(PathNotFound):
        driver.get("file/child")
    with pytest.raises(PathNotFound):
        driver.stat("file/child")
    assert not driver.exists("file/child")


def test_exists(driver: StorageDriver) -> None:
    assert not driver.exists("x/y")
    driver.put("x/y", b"1")
    assert driver.exists("x/y")
    driver.delete("x/y")
    assert not driver.exists("x/y")


# -- reader -----------------------------------------------------------------------------


def test_reader_reads_everything(driver: StorageDriver) -> None:
    data = b"0123456789" * 1000
    driver.put("r", data)
    reader = driver.reader("r")
    try:
        assert reader.read() == data
        assert reader.read() == b""
    finally:
        reader.close()


def test_reader_with_offset_and_sized_reads(driver: StorageDriver) -> None:
    data = bytes(range(256)) * 40
    driver.put("r", data)
    reader = driver.reader("r", 1000)
    try:
        parts = []
        while block := reader.read(333):
            assert len(block) <= 333
            parts.append(block)
    finally:
        reader.close()
    assert b"".join(parts) == data[1000:]


def test_reader_offset_at_end_reads_nothing(driver: StorageDriver) -> None:
    driver.put("r", b"abc")
    reader = driver.reader("r", 3)
    try:
        assert reader.read() == b""
    finally:
        reader.close()


# -- writer -----------------------------------------------------------------------------


def test_writer_creates_file_and_parents(driver: StorageDriver) -> None:
    writer = driver.writer("new/dir/data", append=True)
    assert writer.size == 0
    writer.write(b"hello ")
    writer.write(memoryview(b"world"))
    assert writer.size == 11
    writer.close()
    assert driver.get("new/dir/data") == b"hello world"
    assert driver.stat("new/dir/data").size == 11


def test_writer_append_keeps_content(driver: StorageDriver) -> None:
    driver.put("w", b"existing-")
    writer = driver.writer("w", append=True)
    assert writer.size == len(b"existing-")
    writer.write(b"more")
    assert writer.size == len(b"existing-more")
    writer.close()
    assert driver.get("w") == b"existing-more"
    # And again, across another writer session.
    assert _write(driver, "w", b"+last", append=True) == len(b"existing-more+last")
    assert driver.get("w") == b"existing-more+last"


def test_writer_without_append_truncates(driver: StorageDriver) -> None:
    driver.put("w", b"old content that is long")
    writer = driver.writer("w", append=False)
    assert writer.size == 0
    writer.write(b"new")
    assert writer.size == 3
    writer.close()
    assert driver.get("w") == b"new"


def test_writer_truncate_to_empty(driver: StorageDriver) -> None:
    driver.put("w", b"old")
    driver.writer("w", append=False).close()
    assert driver.get("w") == b""
    assert driver.stat("w").size == 0


def test_writer_commit_makes_data_readable(driver: StorageDriver) -> None:
    writer = driver.writer("c/data", append=False)
    writer.write(b"durable bytes")
    commit: Callable[[], None] = writer.commit
    commit()
    assert driver.get("c/data") == b"durable bytes"
    assert driver.stat("c/data").size == len(b"durable bytes")
    # A committed file can be appended to later.
    assert _write(driver, "c/data", b"!", append=True) == len(b"durable bytes!")
    assert driver.get("c/data") == b"durable bytes!"


def test_writer_commit_after_append(driver: StorageDriver) -> None:
    driver.put("c", b"a")
    writer = driver.writer("c", append=True)
    writer.write(b"b")
    writer.commit()
    assert driver.get("c") == b"ab"


def test_closed_writer_data_is_visible_to_readers(driver: StorageDriver) -> None:
    """Uploads rely on this: a chunk written and closed by one process is seen by the next."""
    _write(driver, "u/data", b"chunk-1", append=True)
    assert driver.stat("u/data").size == 7
    assert driver.get("u/data") == b"chunk-1"
    reader = driver.reader("u/data", 6)
    try:
        assert reader.read() == b"1"
    finally:
        reader.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    sessions=st.lists(
        st.lists(st.binary(min_size=0, max_size=4096), min_size=0, max_size=6),
        min_size=1,
        max_size=5,
    ),
    commit_last=st.booleans(),
)
def test_writer_appends_equal_concatenation(
    driver: StorageDriver, sessions: list[list[bytes]], commit_last: bool
) -> None:
    path = f"hyp/{uuid.uuid4().hex}/data"
    expected = b""
    for number, chunks in enumerate(sessions):
        writer = driver.writer(path, append=True)
        assert writer.size == len(expected)
        for chunk in chunks:
            writer.write(chunk)
            expected += chunk
            assert writer.size == len(expected)
        if commit_last and number == len(sessions) - 1:
            writer.commit()
        else:
            writer.close()
        assert driver.stat(path).size == len(expected)
    assert driver.get(path) == expected
    reader = driver.reader(path, len(expected) // 2)
    try:
        assert reader.read() == expected[len(expected) // 2 :]
    finally:
        reader.close()


# -- stat -------------------------------------------------------------------------------


def test_stat(driver: StorageDriver) -> None:
    driver.put("s/file", b"12345")
    info = driver.stat("s/file")
    assert isinstance(info, FileInfo)
    assert info.path == "s/file"
    assert info.size == 5
    assert isinstance(info.modified, float)
    assert info.modified > 0


# -- list / walk ------------------------------------------------------------------------


def test_list_direct_children_sorted(driver: StorageDriver) -> None:
    for path in ("d/zeta", "d/alpha", "d/mid/deep/file", "d/beta/x", "other/file"):
        driver.put(path, b"x")
    assert driver.list("d") == ["d/alpha", "d/beta", "d/mid", "d/zeta"]
    assert driver.list("d/mid") == ["d/mid/deep"]
    assert driver.list("d/mid/deep") == ["d/mid/deep/file"]


def test_walk_recursive_with_sizes(driver: StorageDriver) -> None:
    files = {
        "w/a": b"1",
        "w/b/c": b"22",
        "w/b/d/e": b"333",
        "w/f/g/h/i": b"",
        "outside/x": b"nope",
    }
    for path, data in files.items():
        driver.put(path, data)
    walked = list(driver.walk("w"))
    assert all(isinstance(info, FileInfo) for info in walked)
    assert sorted((info.path, info.size) for info in walked) == sorted(
        (path, len(data)) for path, data in files.items() if path.startswith("w/")
    )
    assert sorted(info.path for info in driver.walk("w/b")) == ["w/b/c", "w/b/d/e"]


# -- move -------------------------------------------------------------------------------


def test_move(driver: StorageDriver) -> None:
    driver.put("src/file", b"payload")
    driver.move("src/file", "dst/new/place")
    assert driver.get("dst/new/place") == b"payload"
    assert not driver.exists("src/file")


def test_move_replaces_destination(driver: StorageDriver) -> None:
    driver.put("src", b"new")
    driver.put("dst", b"old and longer")
    driver.move("src", "dst")
    assert driver.get("dst") == b"new"
    assert not driver.exists("src")


def test_move_not_durable_then_persist(driver: StorageDriver) -> None:
    """move(durable=False) is still an atomic move; persist() makes it durable later."""
    writer = driver.writer("up/data", append=False)
    writer.write(b"payload")
    writer.commit()
    driver.move("up/data", "blobs/x/data", durable=False)
    driver.persist("blobs/x/data")
    assert driver.get("blobs/x/data") == b"payload"
    assert not driver.exists("up/data")


def test_move_missing_source_leaves_destination(driver: StorageDriver) -> None:
    driver.put("dst", b"keep")
    with pytest.raises(PathNotFound):
        driver.move("missing", "dst")
    assert driver.get("dst") == b"keep"


# -- delete -----------------------------------------------------------------------------


def test_delete_file(driver: StorageDriver) -> None:
    driver.put("del/a", b"1")
    driver.put("del/b", b"2")
    driver.delete("del/a")
    assert not driver.exists("del/a")
    assert driver.get("del/b") == b"2"
    with pytest.raises(PathNotFound):
        driver.delete("del/a")


def test_delete_directory_tree(driver: StorageDriver) -> None:
    for path in ("t/keep", "t/tree/a", "t/tree/b/c", "t/tree/b/d/e"):
        driver.put(path, path.encode())
    driver.delete("t/tree")
    for path in ("t/tree/a", "t/tree/b/c", "t/tree/b/d/e"):
        assert not driver.exists(path)
        with pytest.raises(PathNotFound):
            driver.get(path)
    assert [info.path for info in driver.walk("t")] == ["t/keep"]
    assert driver.list("t") == ["t/keep"]
    with pytest.raises(PathNotFound):
        driver.delete("t/tree")


# -- invalid paths ----------------------------------------------------------------------

INVALID_PATHS = ["", "/abs", "/", "a/../b", "..", "../escape", "a//b", "a/", "./a", "a/./b"]

PATH_OPERATIONS: dict[str, Callable[[StorageDriver, str], object]] = {
    "put": lambda d, p: d.put(p, b"x"),
    "get": lambda d, p: d.get(p),
    "reader": lambda d, p: d.reader(p),
    "writer": lambda d, p: d.writer(p, append=True),
    "stat": lambda d, p: d.stat(p),
    "exists": lambda d, p: d.exists(p),
    "list": lambda d, p: d.list(p),
    "walk": lambda d, p: list(d.walk(p)),
    "move-source": lambda d, p: d.move(p, "ok/destination"),
    "move-destination": lambda d, p: d.move("ok/source", p),
    "delete": lambda d, p: d.delete(p),
    "local_path": lambda d, p: d.local_path(p),
}


@pytest.mark.parametrize("operation", sorted(PATH_OPERATIONS))
@pytest.mark.parametrize("path", INVALID_PATHS)
def test_invalid_path_raises_invalid_path(driver: StorageDriver, operation: str, path: str) -> None:
    driver.put("ok/source", b"source")
    driver.put("b", b"sibling")  # what "a/../b" would reach
    with pytest.raises(InvalidPath):
        PATH_OPERATIONS[operation](driver, path)
    # Nothing was changed by the refused call.
    assert driver.get("ok/source") == b"source"
    assert driver.get("b") == b"sibling"
    assert not driver.exists("ok/destination")


def test_invalid_path_is_a_value_error() -> None:
    assert issubclass(InvalidPath, ValueError)


# -- local_path / redirect_url ----------------------------------------------------------


def test_local_path_contract(driver: StorageDriver) -> None:
    """None (no local file), or an absolute filesystem path holding exactly the stored bytes."""
    driver.put("lp/file", b"sendfile me")
    local = driver.local_path("lp/file")
    if local is None:
        return
    local_file = Path(local)
    assert local_file.is_absolute()
    assert local_file.read_bytes() == b"sendfile me"
    # It tracks the stored file: appended bytes show up there too.
    _write(driver, "lp/file", b"!", append=True)
    assert local_file.read_bytes() == b"sendfile me!"


def test_local_path_of_missing_file_does_not_raise(driver: StorageDriver) -> None:
    local = driver.local_path("lp/missing")
    assert local is None or not Path(local).exists()


# Names starting with a dot are ordinary names (the app itself writes v1/.healthcheck).
DOTTED_PATHS = [".hidden", "a/.b", "a/.b/c", "a/b.", "a/..b", "a/...", "v1/.healthcheck"]


@pytest.mark.parametrize("path", DOTTED_PATHS)
def test_dotted_names_are_valid_everywhere(driver: StorageDriver, path: str) -> None:
    driver.put(path, b"dotted")
    assert driver.exists(path)
    assert driver.get(path) == b"dotted"
    assert driver.stat(path).size == 6
    local = driver.local_path(path)
    assert local is None or Path(local).read_bytes() == b"dotted"
    driver.move(path, f"{path}-moved")
    assert driver.get(f"{path}-moved") == b"dotted"
    driver.delete(f"{path}-moved")
    assert not driver.exists(f"{path}-moved")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_redirect_url_contract(driver: StorageDriver, method: str) -> None:
    """None (serve the bytes yourself), or an absolute http(s) URL."""
    driver.put("rd/file", b"x")
    url = driver.redirect_url("rd/file", method)
    assert url is None or url.startswith(("https://", "http://"))


def test_driver_has_a_name(driver: StorageDriver) -> None:
    assert isinstance(driver.name, str)
    assert driver.name


# -- large appends (multipart on object stores) -----------------------------------------


def test_appends_across_part_boundaries(driver: StorageDriver) -> None:
    """Sessions of 3 MiB chunks: parts fill across sessions, the tail carries over, and
    a reader (which seals an object store's upload) and further appends both work."""
    block = bytes(range(256)) * 4096  # 1 MiB
    expected = b""
    for number in range(4):
        writer = driver.writer("big/data", append=True)
        assert writer.size == len(expected)
        chunk = block[number:] * 3
        writer.write(chunk)
        expected += chunk
        writer.close()
        assert driver.stat("big/data").size == len(expected)
    writer = driver.writer("big/data", append=True)
    writer.write(b"tail")
    expected += b"tail"
    writer.commit()
    assert driver.get("big/data") == expected
    # A sealed large file can still be appended to, and moved.
    assert _write(driver, "big/data", b"!", append=True) == len(expected) + 1
    driver.move("big/data", "big/moved")
    assert driver.get("big/moved") == expected + b"!"
    assert not driver.exists("big/data")


def test_delete_of_unfinished_large_file(driver: StorageDriver) -> None:
    writer = driver.writer("gone/data", append=True)
    writer.write(b"x" * (S3_PART_SIZE + 1))
    writer.close()
    driver.delete("gone")
    assert not driver.exists("gone/data")
    assert driver.abort_incomplete("gone", older_than=2**40) == 0


def test_delete_many(driver: StorageDriver) -> None:
    for name in ("a", "b", "c"):
        driver.put(f"many/{name}", b"1")
    driver.delete_many(["many/a", "many/c", "many/missing"])
    assert driver.list("many") == ["many/b"]
    driver.delete_many([])


def test_abort_incomplete_keeps_recent_and_kept(driver: StorageDriver) -> None:
    for name in ("old", "kept"):
        writer = driver.writer(f"up/{name}/data", append=True)
        writer.write(b"y" * S3_PART_SIZE)
        writer.close()
    assert driver.abort_incomplete("up", older_than=0) == 0  # none started before 1970
    # Stores without multipart state abort nothing; S3 aborts exactly the old one.
    aborted = driver.abort_incomplete("up", older_than=2**40, keep=["up/kept"])
    assert aborted == (1 if driver.name == "s3" else 0)
    assert driver.get("up/kept/data") == b"y" * S3_PART_SIZE


def test_stage_then_move(driver: StorageDriver) -> None:
    """stage() prepares a move: afterwards the move gives the same result as without it,
    and staging onto an existing destination leaves that destination alone."""
    writer = driver.writer("st/upload", append=True)
    writer.write(b"staged bytes")
    writer.commit()
    driver.stage("st/upload", "st/blob")
    assert driver.get("st/upload") == b"staged bytes"
    driver.move("st/upload", "st/blob", durable=False)
    driver.persist("st/blob")
    assert driver.get("st/blob") == b"staged bytes"
    assert not driver.exists("st/upload")
    driver.put("st/other", b"other")
    driver.stage("st/other", "st/blob")
    assert driver.get("st/blob") == b"staged bytes"
