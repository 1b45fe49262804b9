"""The local-filesystem driver: durable writes by fsync + atomic rename, sendfile-able paths."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

from portside.storage.base import FileInfo, InvalidPath, PathNotFound

_WRITE_BUFFER = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checked_parts(path: str) -> list[str]:
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidPath(f"invalid storage path {path!r}")
    return parts


_DELETERS = 8
_deleter_pool: ThreadPoolExecutor | None = None
_deleter_lock = threading.Lock()


def _deleters() -> ThreadPoolExecutor:
    """The process's pool for delete_many, made on first use."""
    global _deleter_pool  # noqa: PLW0603 - one bounded pool per process
    with _deleter_lock:
        if _deleter_pool is None:
            _deleter_pool = ThreadPoolExecutor(_DELETERS, thread_name_prefix="fs-delete")
        return _deleter_pool


def _forget_deleters() -> None:
    # A forked child has none of the parent's threads: it makes its own pool.
    global _deleter_pool, _deleter_lock  # noqa: PLW0603
    _deleter_pool = None
    _deleter_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_deleters)


def _unlink_missing_ok(path: Path) -> None:
    path.unlink(missing_ok=True)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range (Linux), or None where it is not available."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2
# Start writeback every this many bytes, so that the fsync before a blob is committed
# waits for the last few megabytes instead of the whole blob (measured here: a 1 GiB
# write + fsync took 2.9 s plain, 1.9 s with this).
_WRITEBACK_EVERY = 8 * 1024 * 1024


class FileWriter:
    def __init__(self, path: Path, *, append: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "ab" if append else "wb", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self._size = self._file.tell()
        self._written_back = self._size

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._size += len(data)
        if _SYNC_FILE_RANGE is not None and self._size - self._written_back >= _WRITEBACK_EVERY:
            self._file.flush()
            _SYNC_FILE_RANGE(
                self._file.fileno(),
                self._written_back,
                self._size - self._written_back,
                _SYNC_FILE_RANGE_WRITE,
            )
            self._written_back = self._size

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def close(self) -> None:
        self._file.close()


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self._root_text = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _full(self, path: str) -> Path:
        return self.root.joinpath(*_checked_parts(path))

    def put(self, path: str, data: bytes) -> None:
        full = self._full(path)
        full.parent.mkdir(parents=True, exist_ok=True)
        temp = full.with_name(f".{full.name}.{uuid.uuid4().hex}.tmp")
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, full)
        _fsync_dir(full.parent)

    def get(self, path: str) -> bytes:
        try:
            return self._full(path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise PathNotFound(path) from None

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            handle = open(self._full(path), "rb")  # noqa: SIM115 - returned to the caller
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise PathNotFound(path) from None
        if offset:
            handle.seek(offset)
        return handle

    def writer(self, path: str, *, append: bool) -> FileWriter:
        return FileWriter(self._full(path), append=append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = self._full(path).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        return FileInfo(path, st.st_size, st.st_mtime)

    def exists(self, path: str) -> bool:
        return self._full(path).exists()

    def list(self, prefix: str) -> list[str]:
        full = self._full(prefix)
        try:
            return sorted(f"{prefix}/{child.name}" for child in full.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(prefix) from None

    def walk(self, prefix: str) -> Iterator[FileInfo]:
        full = self._full(prefix)
        for directory, _dirs, files in os.walk(full):
            for name in sorted(files):
                file_path = Path(directory) / name
                with contextlib.suppress(FileNotFoundError):
                    st = file_path.stat()
                    rel = file_path.relative_to(self.root).as_posix()
                    yield FileInfo(rel, st.st_size, st.st_mtime)

    def move(self, source: str, destination: str, *, durable: bool = True) -> None:
        src, dst = self._full(source), self._full(destination)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if durable:
            # The bytes must be on disk before the name is: otherwise an OS crash can
            # leave a complete-looking name over empty or partial content.
            try:
                fd = os.open(src, os.O_RDONLY)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise PathNotFound(source) from None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        try:
            os.replace(src, dst)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(source) from None
        if durable:
            _fsync_dir(dst.parent)

    def stage(self, source: str, destination: str) -> bool:
        # A rename is cheap under any lock: nothing to prepare.
        _checked_parts(source)
        _checked_parts(destination)
        return False

    def persist(self, path: str) -> None:
        # The new name lives in the parent directory's entries; its fsync records it.
        # (New parent directories are created by move's mkdir and recorded by the
        # journal commit this fsync forces on ext4/XFS.)
        try:
            _fsync_dir(self._full(path).parent)
        except FileNotFoundError:
            raise PathNotFound(path) from None

    def delete(self, path: str) -> None:
        full = self._full(path)
        try:
            if full.is_dir():
                shutil.rmtree(full)
            else:
                full.unlink()
        except FileNotFoundError:
            raise PathNotFound(path) from None

    def delete_many(self, paths: Iterable[str]) -> None:
        # Every path is checked before the first unlink. An unlink is latency-bound on a
        # busy disk (milliseconds each), so a batch goes through a small shared pool.
        full = [self._full(path) for path in paths]
        if len(full) < 2:
            for file in full:
                _unlink_missing_ok(file)
            return
        for _ in _deleters().map(_unlink_missing_ok, full):
            pass

    def abort_incomplete(self, prefix: str, older_than: float, keep: Iterable[str] = ()) -> int:
        _checked_parts(prefix)
        return 0

    def local_path(self, path: str) -> str | None:
        # Hot path (every blob GET): plain string joins, no pathlib objects.
        _checked_parts(path)
        return f"{self._root_text}/{path}"

    def redirect_url(self, path: str, method: str) -> str | None:
        return None
