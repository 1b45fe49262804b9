"""Copy everything one driver stores to another (`portside storage copy`): the move of a
registry's bytes, e.g. from a local directory to an S3 bucket, without re-pushing.

Every file under the layout's root is copied (blobs, uploads in progress, the rest).
Resumable: a file the destination already has with the same size is skipped, so a run
that was interrupted continues where it stopped. A blob's bytes are hashed while they
stream and must match the digest its path names; each file is written to a temporary
path and moved into place only when complete (and verified), so the destination never
holds a blob at its digest path with other content. Files are copied by `workers`
threads side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from portside.storage import paths
from portside.storage.base import FileInfo, PathNotFound, StorageDriver

_CHUNK = 1024 * 1024


@dataclass
class CopyReport:
    files: int = 0
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> str:
        verdict = "complete" if not self.failures else f"{len(self.failures)} failed"
        return (
            f"storage copy {verdict}: {self.files} files, {self.copied} copied "
            f"({self.copied_bytes} bytes), {self.present} already present"
        )


def expected_hex(path: str) -> tuple[str, str] | None:
    """(algorithm, hex) when `path` is a blob's path (`v1/blobs/<alg>/<2 hex>/<hex>`)."""
    parts = path.split("/")
    prefix = paths.BLOBS.split("/")
    if len(parts) != len(prefix) + 3 or parts[: len(prefix)] != prefix:
        return None
    algorithm, shard, hex_digest = parts[len(prefix) :]
    if not hex_digest.startswith(shard):
        return None
    return algorithm, hex_digest


def copy_storage(
    source: StorageDriver,
    destination: StorageDriver,
    *,
    workers: int = 8,
    progress: Callable[[CopyReport], None] | None = None,
    progress_every: float = 5.0,
) -> CopyReport:
    report = CopyReport()
    try:
        files = list(source.walk(paths.LAYOUT_VERSION))
    except PathNotFound:
        files = []
    report.files = len(files)
    last = time.monotonic()

    def one(info: FileInfo) -> None:
        nonlocal last
        try:
            copied = _copy_file(source, destination, info)
        except Exception as error:
            with report._lock:
                report.failures.append(f"{info.path}: {error}")
            return
        with report._lock:
            if copied:
                report.copied += 1
                report.copied_bytes += info.size
            else:
                report.present += 1
            if progress is not None and time.monotonic() - last >= progress_every:
                last = time.monotonic()
                progress(report)

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="storage-copy") as pool:
        list(pool.map(one, files))
    return report


def _copy_file(source: StorageDriver, destination: StorageDriver, info: FileInfo) -> bool:
    """Copy one file unless the destination has it with the same size; True if copied."""
    try:
        if destination.stat(info.path).size == info.size:
            return False
    except PathNotFound:
        pass
    blob = expected_hex(info.path)
    hasher = hashlib.new(blob[0]) if blob is not None else None
    temporary = f"{paths.UPLOADS}/copy-{uuid.uuid4().hex}/data"
    reader = source.reader(info.path)
    try:
        writer = destination.writer(temporary, append=False)
        size = 0
        try:
            while block := reader.read(_CHUNK):
                writer.write(block)
                size += len(block)
                if hasher is not None:
                    hasher.update(block)
        except BaseException:
            writer.close()
            raise
        problem = None
        if size != info.size:
            problem = f"read {size} bytes, listed as {info.size}"
        elif blob is not None and hasher is not None and hasher.hexdigest() != blob[1]:
            problem = f"source content hashes to {blob[0]}:{hasher.hexdigest()}"
        if problem is not None:
            writer.close()
            raise ValueError(problem)
        writer.commit()
        destination.move(temporary, info.path)
    except BaseException:
        with contextlib.suppress(PathNotFound):
            destination.delete(paths.upload_dir(temporary.split("/")[-2]))
        raise
    finally:
        reader.close()
    return True
