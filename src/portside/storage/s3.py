"""The S3-API driver (AWS S3 and compatible stores) on boto3.

Paths map to keys under the configured prefix. Plain files are single objects: put,
server-side copy and CompleteMultipartUpload each make an object visible whole or not
at all, so a key never shows partial content.

Appendable files (blob uploads in progress) have no S3 counterpart, so a file being
appended to is an *append object* at its own key: metadata `portside-append` and
`portside-size` (its logical size), a body holding a small JSON state (the S3 multipart
UploadId and the parts uploaded so far, with ETags and sizes) followed by the buffered
tail, the bytes not yet uploaded as a part (less than `part_size`). Each writer session
reads that object, uploads every full `part_size` of bytes as a part (up to
`concurrency` in flight), and on close() writes the object again with the new state and
tail: one PUT, so the file's state moves atomically, and any process can continue it
(the next PATCH of an upload may reach another replica). commit(), the end of an
upload, seals the file: the tail becomes the last part and CompleteMultipartUpload
replaces the append object with the data (or, below one part, a plain put). Reading an
append object seals it first; appending to a plain object starts a multipart upload
whose first parts are server-side copies of it.

A crash between a part upload and the state PUT loses only that part's record: the file
keeps its previous size and the client resumes from there (the part number is reused).
Multipart uploads whose append object is gone are aborted by `abort_incomplete`
(upload purge) and by delete().

There is no rename: move() is a server-side copy (multipart for large objects) and a
delete. `walk` reports stored object sizes: an append object's is its state's, not its
logical size (only unfinished uploads are append objects).
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from portside.config import ConfigError, S3StorageSettings
from portside.storage.base import FileInfo, InvalidPath, PathNotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

APPEND_META = "portside-append"
SIZE_META = "portside-size"
MAX_PARTS = 10_000
MAX_COPY_PART = 5 * 1024 * 1024 * 1024
DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys per call
# The HTTP worker's blocking-work pool (portside.offload, sized by
# metadata.engine.POOL_SIZE): every pool thread may hold one connection at once.
REQUEST_THREADS = 8
_READ_CHUNK = 1024 * 1024


class StorageError(OSError):
    """The object store refused or failed a request (other than a missing key)."""


class _InvalidRange(StorageError):
    """A ranged read starting at or past the end of the object."""


def _checked(path: str) -> str:
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidPath(f"invalid storage path {path!r}")
    return path


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _missing(error: botocore.exceptions.ClientError) -> bool:
    return _code(error) in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


@dataclass(frozen=True, slots=True)
class _Loaded:
    """What a writer continues from: an append object's state and tail, or a plain
    object's content as the tail, or (`adopt`) the size of a plain object too large to
    be a tail."""

    state: _State
    tail: bytes
    adopt: int = 0


@dataclass
class _State:
    """An append object's state: the multipart upload and its parts (number, etag, size)."""

    upload_id: str | None = None
    parts: list[tuple[int, str, int]] = field(default_factory=list)

    def encode(self, tail: bytes | bytearray) -> bytes:
        header = json.dumps({"upload_id": self.upload_id, "parts": self.parts}).encode()
        return len(header).to_bytes(4, "big") + header + bytes(tail)

    @classmethod
    def decode(cls, body: bytes) -> tuple[_State, bytes]:
        length = int.from_bytes(body[:4], "big")
        header = json.loads(body[4 : 4 + length])
        parts = [(int(n), str(etag), int(size)) for n, etag, size in header["parts"]]
        return cls(header["upload_id"], parts), body[4 + length :]

    @property
    def parts_size(self) -> int:
        return sum(size for _, _, size in self.parts)


class S3Reader:
    def __init__(self, body: Any) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        if self._body is None:
            return b""
        try:
            data: bytes = self._body.read(None if size < 0 else size)
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(f"reading from the object store failed: {error}") from error
        return data

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


class S3Writer:
    """One writer session on an append object (see the module docstring)."""

    def __init__(self, driver: S3Driver, key: str, loaded: _Loaded | None) -> None:
        self._driver = driver
        self._key = key
        self._state = loaded.state if loaded else _State()
        self._buffer = bytearray(loaded.tail if loaded else b"")
        # A plain object too large to buffer: adopted (copied into parts) on first write.
        self._adopt = loaded.adopt if loaded else 0
        self._size = self._state.parts_size + len(self._buffer) + self._adopt
        self._dirty = loaded is None
        self._pending: list[Future[tuple[int, str, int]]] = []
        # Set when a request failed: bytes may be missing from the parts, so the file
        # keeps the state of its last close (the client resumes from that size).
        self._failed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | memoryview) -> None:
        if not len(data):
            return
        if self._failed:
            raise StorageError(f"{self._key}: an earlier write failed")
        try:
            self._adopted()
            self._buffer += data
            self._size += len(data)
            self._dirty = True
            part_size = self._driver.part_size
            while len(self._buffer) >= part_size:
                chunk = bytes(self._buffer[:part_size])
                del self._buffer[:part_size]
                self._upload_part(chunk)
        except BaseException:
            self._failed = True
            raise

    def _adopted(self) -> None:
        if self._adopt:
            self._state = self._driver.adopt(self._key, self._adopt)
            self._adopt = 0

    def _upload_part(self, chunk: bytes) -> None:
        driver = self._driver
        if self._state.upload_id is None:
            self._state.upload_id = driver.create_multipart(self._key)
        number = len(self._state.parts) + len(self._pending) + 1
        if number > MAX_PARTS:
            raise StorageError(
                f"file larger than {MAX_PARTS} parts of storage.s3.part_size "
                f"({driver.part_size} bytes)"
            )
        # Bounded: at most `concurrency` parts (part_size bytes each) in memory at once.
        while len(self._pending) >= driver.concurrency:
            self._record(self._pending.pop(0))
        self._pending.append(
            driver.parts.submit(driver.upload_part, self._key, self._state.upload_id, number, chunk)
        )

    def _record(self, future: Future[tuple[int, str, int]]) -> None:
        self._state.parts.append(future.result())

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        try:
            for future in pending:
                self._record(future)
        except BaseException:
            self._failed = True
            raise
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        """Record what was written: parts so far, and the tail, in the append object
        (unless a write failed: then the file stays as its last close left it)."""
        if self._failed:
            for future in self._pending:
                future.cancel()
            return
        self._drain()
        if self._dirty:
            self._driver.put_state(self._key, self._state, self._buffer, self._size)
            self._dirty = False

    def commit(self) -> None:
        """Seal: the file becomes a plain object holding every byte written."""
        if self._failed:
            raise StorageError(f"{self._key}: an earlier write failed")
        self._drain()
        if self._adopt:  # a plain object nothing was appended to: already sealed
            return
        self._driver.seal(self._key, self._state, bytes(self._buffer))
        self._dirty = False


class S3Driver:
    name = "s3"

    def __init__(self, config: S3StorageSettings) -> None:
        assert config.bucket is not None
        self.bucket = config.bucket
        self.prefix = f"{config.prefix}/" if config.prefix else ""
        self.part_size = config.part_size
        self.concurrency = config.concurrency
        self.redirect = config.redirect
        self.redirect_expiry = config.redirect_expiry_seconds
        self._sse: dict[str, str] = {}
        if config.encryption != "none":
            self._sse["ServerSideEncryption"] = config.encryption
            if config.kms_key_id:
                self._sse["SSEKMSKeyId"] = config.kms_key_id
        # One client for every thread (boto3 clients are thread-safe; sessions are not),
        # with a connection for each thread that may use it at once (below).
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            aws_session_token=config.session_token,
            region_name=config.region,
        )
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=config.endpoint_url,
            config=botocore.config.Config(
                max_pool_connections=REQUEST_THREADS * (1 + 2 * config.concurrency),
                s3={"addressing_style": "path" if config.path_style else "auto"},
                retries={"mode": "standard"},
                signature_version="s3v4",
            ),
        )
        # Part uploads of every writer in this process (each keeps at most `concurrency`
        # in flight); a managed copy has `concurrency` threads of its own. Hence the
        # connections above: the pool's threads, their parts, their copies' parts.
        self.parts = ThreadPoolExecutor(
            REQUEST_THREADS * config.concurrency, thread_name_prefix="s3-part"
        )
        self._transfer = TransferConfig(
            multipart_threshold=config.part_size,
            multipart_chunksize=config.part_size,
            max_concurrency=config.concurrency,
        )

    # -- keys ---------------------------------------------------------------------------

    def key(self, path: str) -> str:
        return self.prefix + _checked(path)

    def _path(self, key: str) -> str:
        return key[len(self.prefix) :]

    def check(self) -> None:
        """Startup check: the bucket is reachable with these credentials (ConfigError)."""
        where = f"bucket {self.bucket!r} at {self.client.meta.endpoint_url}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError(
                "storage.s3: no credentials: set storage.s3.access_key_id and "
                "secret_access_key, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an AWS profile"
            ) from None
        except botocore.exceptions.ClientError as error:
            code = _code(error)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigError(f"storage.s3.bucket: {where} does not exist") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ConfigError(
                    f"storage.s3: access to {where} denied ({code}): check the credentials"
                ) from None
            raise ConfigError(f"storage.s3: {where}: {code or error}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise ConfigError(f"storage.s3.endpoint_url: cannot reach {where}: {error}") from None

    # -- low-level calls (errors become PathNotFound / StorageError) -------------------

    def _call(self, path: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except botocore.exceptions.ClientError as error:
            if _missing(error):
                raise PathNotFound(path) from None
            if _code(error) == "InvalidRange":
                raise _InvalidRange(path) from None
            raise StorageError(f"S3 {method} {path}: {_code(error)}: {error}") from error
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(f"S3 {method} {path}: {error}") from error

    def _head(self, path: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self._call(path, "head_object", Key=self.key(path))
        except PathNotFound:
            return None
        return result

    def create_multipart(self, key: str) -> str:
        created = self._call(self._path(key), "create_multipart_upload", Key=key, **self._sse)
        return str(created["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes
    ) -> tuple[int, str, int]:
        result = self._call(
            self._path(key),
            "upload_part",
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        return number, str(result["ETag"]), len(data)

    def put_state(self, key: str, state: _State, tail: bytes | bytearray, size: int) -> None:
        self._call(
            self._path(key),
            "put_object",
            Key=key,
            Body=state.encode(tail),
            Metadata={APPEND_META: "1", SIZE_META: str(size)},
            **self._sse,
        )

    def seal(self, key: str, state: _State, tail: bytes) -> None:
        """Replace the append object at `key` by its content, in one visible step."""
        if state.upload_id is None:
            self._call(self._path(key), "put_object", Key=key, Body=tail, **self._sse)
            return
        parts = list(state.parts)
        if tail or not parts:
            parts.append(self.upload_part(key, state.upload_id, len(parts) + 1, tail))
        self._call(
            self._path(key),
            "complete_multipart_upload",
            Key=key,
            UploadId=state.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in parts]},
        )

    def _load(self, path: str) -> _Loaded | None:
        """What a writer of `path` continues from (see _Loaded); None if missing."""
        try:
            result = self._call(path, "get_object", Key=self.key(path))
        except PathNotFound:
            return None
        body = result["Body"]
        try:
            if result.get("Metadata", {}).get(APPEND_META):
                state, tail = _State.decode(body.read())
                return _Loaded(state, tail)
            size = int(result["ContentLength"])
            if size < self.part_size:
                return _Loaded(_State(), body.read())
        finally:
            body.close()
        return _Loaded(_State(), b"", adopt=size)

    def _seal_path(self, path: str) -> None:
        loaded = self._load(path)
        if loaded is None:
            raise PathNotFound(path)
        if not loaded.adopt:
            self.seal(self.key(path), loaded.state, loaded.tail)

    def adopt(self, key: str, size: int) -> _State:
        """A multipart upload whose first parts are server-side copies of the plain
        object at `key` (size >= part_size >= 5 MiB), in equal ranges of at most 5 GiB,
        so that every copied part is at least 5 MiB as S3 requires of non-last parts."""
        state = _State(self.create_multipart(key))
        count = -(-size // MAX_COPY_PART)
        step = -(-size // count)
        start = 0
        while start < size:
            end = min(start + step, size)
            number = len(state.parts) + 1
            result = self._call(
                self._path(key),
                "upload_part_copy",
                Key=key,
                UploadId=state.upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceRange=f"bytes={start}-{end - 1}",
            )
            state.parts.append((number, str(result["CopyPartResult"]["ETag"]), end - start))
            start = end
        return state

    def _abort_uploads_of(self, key: str, *, exact: bool) -> int:
        """Abort the multipart uploads of `key` (exact) or below the prefix `key`."""
        return self._abort(u for u in self._incomplete(key) if not exact or u["Key"] == key)

    def _abort(self, uploads: Iterable[dict[str, Any]]) -> int:
        aborted = 0
        for upload in uploads:
            with contextlib.suppress(PathNotFound):  # finished or aborted meanwhile
                self._call(
                    upload["Key"],
                    "abort_multipart_upload",
                    Key=upload["Key"],
                    UploadId=upload["UploadId"],
                )
                aborted += 1
        return aborted

    def _incomplete(self, key_prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key_prefix):
                yield from page.get("Uploads", [])  # type: ignore[misc]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise StorageError(f"S3 list_multipart_uploads {key_prefix}: {error}") from error

    def _listed(self, key_prefix: str, *, delimiter: bool) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        options: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key_prefix}
        if delimiter:
            options["Delimiter"] = "/"
        try:
            yield from paginator.paginate(**options)  # type: ignore[misc]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise StorageError(f"S3 list_objects_v2 {key_prefix}: {error}") from error

    # -- the StorageDriver protocol -----------------------------------------------------

    def put(self, path: str, data: bytes) -> None:
        self._call(path, "put_object", Key=self.key(path), Body=data, **self._sse)

    def get(self, path: str) -> bytes:
        reader = self.reader(path)
        try:
            return reader.read()
        finally:
            reader.close()

    def reader(self, path: str, offset: int = 0) -> S3Reader:
        """Reading an append object seals it first (see the module docstring)."""
        options: dict[str, Any] = {"Key": self.key(path)}
        if offset:
            options["Range"] = f"bytes={offset}-"
        for _ in range(2):
            try:
                result = self._call(path, "get_object", **options)
            except _InvalidRange:  # offset at or past the end (of the object as stored)
                head = self._head(path)
                if head is None:
                    raise PathNotFound(path) from None
                if not head.get("Metadata", {}).get(APPEND_META):
                    return S3Reader(None)
                self._seal_path(path)
                continue
            if not result.get("Metadata", {}).get(APPEND_META):
                return S3Reader(result["Body"])
            result["Body"].close()
            self._seal_path(path)
        raise StorageError(f"{path}: appended to while being read")

    def writer(self, path: str, *, append: bool) -> S3Writer:
        key = self.key(path)
        if append:
            return S3Writer(self, key, self._load(path))
        if self._head(path) is not None:
            self._abort_uploads_of(key, exact=True)
        return S3Writer(self, key, None)

    def stat(self, path: str) -> FileInfo:
        head = self._head(path)
        if head is None:
            raise PathNotFound(path)
        size = head.get("Metadata", {}).get(SIZE_META)
        return FileInfo(
            path,
            int(size) if size is not None else int(head["ContentLength"]),
            head["LastModified"].timestamp(),
        )

    def exists(self, path: str) -> bool:
        """A file, or a directory (any key below the path)."""
        if self._head(path) is not None:
            return True
        for page in self._listed(self.key(path) + "/", delimiter=False):
            return bool(page.get("KeyCount"))
        return False

    def list(self, prefix: str) -> list[str]:
        key_prefix = self.key(prefix) + "/"
        found: set[str] = set()
        for page in self._listed(key_prefix, delimiter=True):
            found.update(
                self._path(p["Prefix"].rstrip("/")) for p in page.get("CommonPrefixes", [])
            )
            found.update(self._path(o["Key"]) for o in page.get("Contents", []))
        if not found:
            raise PathNotFound(prefix)
        return sorted(found)

    def walk(self, prefix: str) -> Iterator[FileInfo]:
        for page in self._listed(self.key(prefix) + "/", delimiter=False):
            for item in page.get("Contents", []):
                yield FileInfo(
                    self._path(item["Key"]), int(item["Size"]), item["LastModified"].timestamp()
                )

    def move(self, source: str, destination: str, *, durable: bool = True) -> None:
        """Server-side copy, then delete (S3 has no rename); the destination appears
        whole. An append object is sealed first. `durable` is moot: S3 writes are."""
        self._copy(source, destination)
        self._call(source, "delete_object", Key=self.key(source))

    def stage(self, source: str, destination: str) -> bool:
        """The copy half of a move, ahead of it (see StorageDriver.stage)."""
        if self._head(destination) is not None:
            return False
        self._copy(source, destination)
        return True

    def _copy(self, source: str, destination: str) -> None:
        source_key, destination_key = self.key(source), self.key(destination)
        head = self._head(source)
        if head is None:
            raise PathNotFound(source)
        if head.get("Metadata", {}).get(APPEND_META):
            self._seal_path(source)
            head = self._head(source) or head
        if int(head["ContentLength"]) <= self.part_size:  # one request, no transfer threads
            self._call(
                source,
                "copy_object",
                Key=destination_key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                **self._sse,
            )
            return
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": source_key},
                self.bucket,
                destination_key,
                ExtraArgs=dict(self._sse),
                Config=self._transfer,
            )
        except botocore.exceptions.ClientError as error:
            if _missing(error):
                raise PathNotFound(source) from None
            raise StorageError(f"S3 copy {source} -> {destination}: {error}") from error
        except botocore.exceptions.BotoCoreError as error:
            raise StorageError(f"S3 copy {source} -> {destination}: {error}") from error

    def persist(self, path: str) -> None:
        _checked(path)

    def delete(self, path: str) -> None:
        """A file (aborting its multipart upload, if appending) or a whole directory
        (every key below it, and every multipart upload below it)."""
        key = self.key(path)
        if self._head(path) is not None:
            self._abort_uploads_of(key, exact=True)
            self._call(path, "delete_object", Key=key)
            return
        keys = [
            item["Key"]
            for page in self._listed(key + "/", delimiter=False)
            for item in page.get("Contents", [])
        ]
        aborted = self._abort_uploads_of(key + "/", exact=False)
        if not keys and not aborted:
            raise PathNotFound(path)
        self._delete_keys(keys)

    def delete_many(self, paths: Iterable[str]) -> None:
        self._delete_keys([self.key(path) for path in paths])

    def _delete_keys(self, keys: builtins.list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            result = self._call(
                batch[0],
                "delete_objects",
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            failed = [e for e in result.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise StorageError(
                    f"S3 delete_objects: {len(failed)} key(s) not deleted, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )

    def abort_incomplete(self, prefix: str, older_than: float, keep: Iterable[str] = ()) -> int:
        """Abort multipart uploads below `prefix` started before `older_than` (a Unix
        time) whose key is not below one of the `keep` paths; how many were aborted."""
        kept = tuple(self.key(path) + "/" for path in keep)
        return self._abort(
            upload
            for upload in self._incomplete(self.key(prefix) + "/")
            if upload["Initiated"].timestamp() < older_than and not upload["Key"].startswith(kept)
        )

    def local_path(self, path: str) -> str | None:
        _checked(path)
        return None

    def redirect_url(self, path: str, method: str) -> str | None:
        if not self.redirect:
            return None
        operation = "head_object" if method == "HEAD" else "get_object"
        return self.client.generate_presigned_url(
            operation,
            Params={"Bucket": self.bucket, "Key": self.key(path)},
            ExpiresIn=self.redirect_expiry,
        )
