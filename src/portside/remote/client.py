"""A client for another registry's Distribution API (pulling side; pushes are in
`push.py`): the requests, their authentication and retries, and reading manifests,
blobs, tags, the catalog and referrers.

Every request goes through `egress.GuardedTransport`, so the egress policy (no loopback,
private or metadata addresses unless the administrator allowed them) holds for the
endpoint, its token server and every redirect. Connections are kept alive per origin.

Authentication (see `auth.py`): a request is first sent as the last challenge says (no
credentials until a peer asks); a 401 carrying a challenge is answered once (a token for
the request's scopes, or Basic credentials) and the request sent again. A 401 after that
is `AuthFailed`.

Retries (see `retry.py`): connection failures, 429 and 5xx answers are tried again with
backoff, honouring `Retry-After`, for requests whose body can be sent again (all but a
blob chunk, which `push.py` resumes from the peer's reported offset instead).

Blob bodies are streamed (`open_blob`), never held whole; manifests are read up to
`MANIFEST_LIMIT` bytes and checked against their digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from portside.digest import is_valid_digest
from portside.egress import EgressPolicy, GuardedTransport, RefusedRequest, tls_context
from portside.oci import mediatypes as mt
from portside.remote.auth import Challenge, Credentials, TokenCache, pick_challenge
from portside.remote.auth import repository_scope as scope_of
from portside.remote.errors import (
    AuthFailed,
    DigestMismatch,
    NotFound,
    RemoteError,
    Unreachable,
)
from portside.remote.retry import RETRIED_STATUSES, RetryPolicy

MANIFEST_LIMIT = 4 * 1024 * 1024
STREAM_CHUNK = 256 * 1024
MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST]
)
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_ERROR_TEXT = 2048


@dataclass(frozen=True, slots=True)
class Ping:
    """The result of `RegistryClient.ping` ("test connection"): `ok` and a message
    naming what worked or what failed."""

    ok: bool
    message: str
    status: int | None = None
    auth: str = "none"  # "none", "basic" or "bearer"


@dataclass(frozen=True, slots=True)
class ManifestRef:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        document = json.loads(self.body)
        if not isinstance(document, dict):
            raise RemoteError(f"manifest {self.digest} is not a JSON object")
        return document


class BlobStream:
    """An open blob download: `size` bytes in all, read from `offset`; `chunks()` yields
    them and, when reading from the start, raises DigestMismatch at the end if they do
    not hash to the digest."""

    def __init__(self, response: httpx.Response, digest: str, size: int, offset: int) -> None:
        self._response = response
        self.digest = digest
        self.size = size
        self.offset = offset

    def chunks(self, chunk_size: int = STREAM_CHUNK) -> Iterator[bytes]:
        algorithm = self.digest.partition(":")[0]
        hasher = hashlib.new(algorithm) if self.offset == 0 else None
        received = 0
        try:
            for arrived in self._response.iter_bytes():  # as it arrives, not buffered
                for start in range(0, len(arrived), chunk_size):
                    chunk = arrived[start : start + chunk_size]
                    received += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    yield chunk
        except httpx.HTTPError as error:
            raise Unreachable(
                f"blob {self.digest}: download cut after {received} bytes: {describe(error)}"
            ) from None
        expected = self.size - self.offset
        if received != expected:
            raise Unreachable(f"blob {self.digest}: got {received} bytes, expected {expected}")
        if hasher is not None and f"{algorithm}:{hasher.hexdigest()}" != self.digest:
            raise DigestMismatch(f"blob {self.digest}: the bytes received hash differently")


class RegistryClient:
    """One peer registry at `base_url` (`https://host[:port]`). Thread-safe: a
    replication run shares one client among its copying threads. Close it (or use it as
    a context manager) to close its connections."""

    def __init__(
        self,
        base_url: str,
        *,
        egress: EgressPolicy,
        credentials: Credentials | None = None,
        verify_tls: bool = True,
        ca_pem: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 60.0,
        chunk_size: int = 16 * 1024 * 1024,
        user_agent: str = "portside",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.chunk_size = chunk_size
        self.sleep = sleep
        self.tokens = TokenCache()
        self.token_fetches = 0  # how many tokens were fetched (tests and logs)
        self._challenge: Challenge | None = None
        self._referrers_api: bool | None = None  # learned on first use
        self._http = httpx.Client(
            transport=GuardedTransport(
                egress, verify=tls_context(verify=verify_tls, ca_pem=ca_pem)
            ),
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 15.0)),
            follow_redirects=True,
            max_redirects=egress.max_redirects,
            trust_env=False,
            headers={"User-Agent": user_agent},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- requests ---------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send a request with auth and retries; the response of the last attempt
        (any status: callers decide). Unreachable when no answer came; AuthFailed when
        the peer refused us after we answered its challenge. A streamed response must
        be closed by the caller."""
        if url.startswith("/"):
            url = self.url(url)
        scopes = tuple(sorted(set(scopes)))
        attempt, answered_challenge = 0, False
        while True:
            attempt += 1
            send_headers = dict(headers or {})
            authorization = self._authorization(scopes, fresh=answered_challenge)
            if authorization:
                send_headers["Authorization"] = authorization
            request = self._http.build_request(
                method, url, headers=send_headers, content=content, params=params
            )
            try:
                response = self._http.send(request, stream=True)
            except RefusedRequest as refused:
                raise Unreachable(f"{method} {url}: {refused}", refused=True) from None
            except httpx.HTTPError as error:
                if retry and attempt < self.retry.attempts:
                    self.sleep(self.retry.wait(attempt))
                    continue
                raise Unreachable(f"{method} {url}: {describe(error)}") from None
            if response.status_code == 401 and not answered_challenge:
                challenge = pick_challenge(response.headers.get_list("www-authenticate"))
                response.close()
                if challenge is None:
                    raise AuthFailed(f"{method} {url}: 401 without a usable challenge", status=401)
                self._challenge = challenge
                answered_challenge = True
                attempt -= 1  # answering the challenge is not a failed attempt
                continue
            if response.status_code in RETRIED_STATUSES and retry and attempt < self.retry.attempts:
                wait = self.retry.wait(attempt, response.headers.get("retry-after"))
                response.close()
                self.sleep(wait)
                continue
            if response.status_code == 401:
                response.close()
                raise AuthFailed(self._rejected(url), status=401)
            if not stream:
                response.read()
            return response

    def _authorization(self, scopes: tuple[str, ...], *, fresh: bool) -> str | None:
        """The Authorization header for a request needing `scopes`, as the peer's last
        challenge asks. `fresh`: the cached token was just refused (or the challenge is
        new), so fetch one, adding the scopes the challenge named."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self.credentials.basic() if self.credentials else None
        realm, service = challenge.realm or "", challenge.service or ""
        token = None if fresh else self.tokens.get(realm, service, scopes)
        if token is None:
            wanted = tuple(sorted(set(scopes) | set(challenge.scopes))) if fresh else scopes
            token, expires_in = self._fetch_token(realm, service, wanted)
            self.tokens.put(realm, service, scopes, token, expires_in)
        return f"Bearer {token}"

    def _fetch_token(self, realm: str, service: str, scopes: tuple[str, ...]) -> tuple[str, float]:
        """A token for `scopes` from the realm, and its lifetime in seconds (0: unsaid)."""
        params: list[tuple[str, str | int | float | bool | None]] = (
            [("service", service)] if service else []
        )
        params += [("scope", s) for s in scopes]
        headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
        for attempt in range(1, self.retry.attempts + 1):
            try:
                response = self._http.get(realm, params=params, headers=headers)
            except RefusedRequest as refused:
                raise Unreachable(f"token server {realm}: {refused}", refused=True) from None
            except httpx.HTTPError as error:
                if attempt < self.retry.attempts:
                    self.sleep(self.retry.wait(attempt))
                    continue
                raise Unreachable(f"token server {realm}: {describe(error)}") from None
            if response.status_code in RETRIED_STATUSES and attempt < self.retry.attempts:
                self.sleep(self.retry.wait(attempt, response.headers.get("retry-after")))
                continue
            break
        if response.status_code in (401, 403):
            who = f"user {self.credentials.username!r}" if self.credentials else "anonymous"
            raise AuthFailed(
                f"token server {realm} refused {who} ({response.status_code})",
                status=response.status_code,
            )
        if response.status_code != 200:
            raise RemoteError(
                f"token server {realm} answered {response.status_code}: {_text(response)}",
                status=response.status_code,
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or 0)
        except (ValueError, AttributeError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RemoteError(f"token server {realm} answered without a token")
        self.token_fetches += 1
        return token, expires_in

    def _rejected(self, url: str) -> str:
        who = f"user {self.credentials.username!r}" if self.credentials else "anonymous access"
        challenge = self._challenge
        how = "Basic auth" if challenge and challenge.scheme == "basic" else "token"
        return f"{url}: the registry refused {who} ({how})"

    # -- checks -----------------------------------------------------------------------
    def ping(self) -> Ping:
        """GET /v2/ with authentication: the "test connection" of an endpoint."""
        try:
            response = self.request("GET", "/v2/")
        except Unreachable as error:
            return Ping(False, f"cannot reach {self.base_url}: {error}")
        except AuthFailed as error:
            return Ping(False, f"authentication failed: {error}", error.status, self._scheme())
        except RemoteError as error:
            return Ping(False, f"{self.base_url}: {error}", error.status, self._scheme())
        status, scheme = response.status_code, self._scheme()
        if status != 200:
            return Ping(
                False,
                f"GET {self.base_url}/v2/ answered {status}: not a registry API endpoint "
                f"({_text(response)[:200]})",
                status,
                scheme,
            )
        who = f"as {self.credentials.username!r}" if self.credentials else "anonymously"
        how = {
            "none": "no authentication asked",
            "basic": f"Basic auth accepted {who}",
            "bearer": f"token auth via {self._challenge.realm if self._challenge else '?'} "
            f"accepted {who}",
        }[scheme]
        version = response.headers.get("docker-distribution-api-version", "registry/2.0")
        return Ping(True, f"connected to {self.base_url} ({version}); {how}", 200, scheme)

    def _scheme(self) -> str:
        return self._challenge.scheme if self._challenge else "none"

    # -- manifests --------------------------------------------------------------------
    def head_manifest(self, repository: str, reference: str) -> ManifestRef | None:
        """What `reference` points to, or None if the peer has no such manifest."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[scope_of(repository, "pull")],
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        expect_status(response, 200, f"manifest {repository}:{reference}")
        digest = response.headers.get("docker-content-digest", "")
        if not digest and is_valid_digest(reference):
            digest = reference
        if not digest:  # some registries only say it on GET
            manifest = self.get_manifest(repository, reference)
            return ManifestRef(manifest.digest, manifest.media_type, len(manifest.body))
        return ManifestRef(
            digest,
            _media_type(response),
            int(response.headers.get("content-length") or 0),
        )

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest's exact bytes, checked against its digest (the reference's when
        it is one, else `Docker-Content-Digest`). NotFound if missing."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[scope_of(repository, "pull")],
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        try:
            expect_status(response, 200, f"manifest {repository}:{reference}")
            body = _read_limited(response, MANIFEST_LIMIT, f"manifest {repository}:{reference}")
        finally:
            response.close()
        claimed = (
            reference
            if is_valid_digest(reference)
            else response.headers.get("docker-content-digest")
        )
        algorithm = claimed.partition(":")[0] if claimed else "sha256"
        digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
        if claimed and claimed != digest:
            raise DigestMismatch(
                f"manifest {repository}:{reference}: its bytes hash to {digest}, not {claimed}"
            )
        return Manifest(digest, _media_type(response, body), body)

    # -- blobs ------------------------------------------------------------------------
    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size if the repository has it, else None."""
        response = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scopes=[scope_of(repository, "pull")]
        )
        if response.status_code == 404:
            return None
        expect_status(response, 200, f"blob {repository}@{digest}")
        return int(response.headers.get("content-length") or 0)

    @contextmanager
    def open_blob(self, repository: str, digest: str, *, offset: int = 0) -> Iterator[BlobStream]:
        """Stream a blob from `offset` (a Range request; a peer that ignores Range is
        read from the start and the first `offset` bytes skipped)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scopes=[scope_of(repository, "pull")],
            headers=headers,
            stream=True,
        )
        try:
            if response.status_code == 206:
                total = _range_total(response.headers.get("content-range"))
                yield BlobStream(response, digest, total, offset)
                return
            expect_status(response, 200, f"blob {repository}@{digest}")
            size = int(response.headers.get("content-length") or -1)
            stream = BlobStream(response, digest, size, 0)
            if offset:
                yield _skipping(stream, offset)
            else:
                yield stream
        finally:
            response.close()

    # -- listings ---------------------------------------------------------------------
    def tags(self, repository: str, *, page_size: int = 1000) -> Iterator[str]:
        """Every tag of the repository, following `Link: <...>; rel="next"` pages."""
        yield from self._pages(
            f"/v2/{repository}/tags/list",
            "tags",
            page_size,
            [scope_of(repository, "pull")],
            f"tags of {repository}",
        )

    def catalog(self, *, page_size: int = 1000) -> Iterator[str]:
        """Every repository the peer lists for us (`/v2/_catalog`, paged)."""
        yield from self._pages(
            "/v2/_catalog", "repositories", page_size, ["registry:catalog:*"], "the catalog"
        )

    def _pages(
        self, path: str, key: str, page_size: int, scopes: list[str], what: str
    ) -> Iterator[str]:
        url: str | None = self.url(path)
        params: dict[str, str] | None = {"n": str(page_size)}
        seen = 0
        while url is not None:
            response = self.request("GET", url, scopes=scopes, params=params)
            expect_status(response, 200, what)
            try:
                items = response.json().get(key) or []
            except (ValueError, AttributeError):
                raise RemoteError(f"{what}: the answer is not the expected JSON") from None
            for item in items:
                if isinstance(item, str):
                    yield item
            seen += 1
            if seen > 100_000:
                raise RemoteError(f"{what}: more than 100000 pages")
            found = _LINK_NEXT.search(response.headers.get("link", ""))
            url = str(httpx.URL(self.url("/")).join(found.group(1))) if found else None
            params = None  # the next link carries its own query

    # -- referrers --------------------------------------------------------------------
    def referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose subject is `digest`: from the referrers
        API, or, on a peer without it (404), from the `sha256-<hex>` tag index of the
        tag scheme (OCI distribution-spec 1.1)."""
        scopes = [scope_of(repository, "pull")]
        if self._referrers_api is not False:
            params = {"artifactType": artifact_type} if artifact_type else None
            response = self.request(
                "GET",
                f"/v2/{repository}/referrers/{digest}",
                scopes=scopes,
                params=params,
                headers={"Accept": mt.OCI_INDEX},
            )
            if response.status_code == 200 and _media_type(response) == mt.OCI_INDEX:
                self._referrers_api = True
                found = _manifests_of(response.content)
                if artifact_type and "OCI-Filters-Applied" not in response.headers:
                    found = [d for d in found if d.get("artifactType") == artifact_type]
                return found
            if response.status_code not in (404, 405, 400) and response.status_code != 200:
                expect_status(response, 200, f"referrers of {repository}@{digest}")
            self._referrers_api = False
        try:
            index = self.get_manifest(repository, referrers_tag(digest))
        except NotFound:
            return []
        found = _manifests_of(index.body)
        if artifact_type:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    @property
    def challenge(self) -> Challenge | None:
        """The peer's last auth challenge (None: it asked for none yet)."""
        return self._challenge

    @property
    def has_referrers_api(self) -> bool | None:
        """Whether the peer answered the referrers API (None: not asked yet)."""
        return self._referrers_api


def referrers_tag(digest: str) -> str:
    """The tag-scheme tag for `digest`'s referrers: `sha256-<hex>`."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_}"[:128]


def describe(error: httpx.HTTPError) -> str:
    """An httpx failure in words: which phase failed and why."""
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectTimeout):
        return f"connect timed out ({text})"
    if isinstance(error, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return f"timed out ({text})"
    if isinstance(error, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return f"TLS certificate verification failed ({text})"
        return f"cannot connect ({text})"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"the connection was cut or the answer is not HTTP ({text})"
    if isinstance(error, httpx.TooManyRedirects):
        return f"too many redirects ({text})"
    return text


def _text(response: httpx.Response) -> str:
    try:
        raw = response.content[:_ERROR_TEXT]
    except httpx.ResponseNotRead:
        return ""
    return raw.decode("utf-8", "replace").strip()


def expect_status(response: httpx.Response, status: int | tuple[int, ...], what: str) -> None:
    """Raise the RemoteError an unexpected answer means (reading its OCI error)."""
    wanted = (status,) if isinstance(status, int) else status
    if response.status_code in wanted:
        return
    with contextlib.suppress(httpx.HTTPError, httpx.StreamError):
        response.read()  # the error body, for its OCI error code
    code, message = _oci_error(response)
    detail = (
        f"{response.status_code}"
        + (f" {code}" if code else "")
        + (f": {message}" if message else "")
    )
    if response.status_code == 404:
        raise NotFound(f"{what}: not found ({detail})", status=404, code=code)
    if response.status_code in (401, 403):
        raise AuthFailed(
            f"{what}: access denied ({detail})", status=response.status_code, code=code
        )
    raise RemoteError(f"{what}: {detail}", status=response.status_code, code=code)


def _oci_error(response: httpx.Response) -> tuple[str | None, str]:
    text = _text(response)
    try:
        errors = json.loads(text).get("errors") or []
        first = errors[0]
        return str(first.get("code")), str(first.get("message") or "")[:300]
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, text[:300]


def _media_type(response: httpx.Response, body: bytes | None = None) -> str:
    declared: str = response.headers.get("content-type", "").split(";")[0].strip()
    if body is not None:
        try:
            in_body = json.loads(body).get("mediaType")
        except (ValueError, AttributeError):
            in_body = None
        if isinstance(in_body, str) and in_body:
            return in_body
    return declared


def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise RemoteError(f"{what}: larger than {limit} bytes")
    except httpx.HTTPError as error:
        raise Unreachable(f"{what}: {describe(error)}") from None
    return bytes(body)


def _range_total(content_range: str | None) -> int:
    """The total of `Content-Range: bytes a-b/total`."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    raise RemoteError(f"partial answer with an unreadable Content-Range {content_range!r}")


def _skipping(stream: BlobStream, offset: int) -> BlobStream:
    """A stream of the whole blob, made to yield from `offset` on."""

    class Skipped(BlobStream):
        def chunks(self, chunk_size: int = STREAM_CHUNK) -> Iterator[bytes]:
            skip = offset
            for chunk in stream.chunks(chunk_size):
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                yield chunk[skip:]
                skip = 0

    return Skipped(stream._response, stream.digest, stream.size, offset)


def _manifests_of(body: bytes) -> list[dict[str, Any]]:
    try:
        manifests = json.loads(body).get("manifests") or []
    except (ValueError, AttributeError):
        raise RemoteError("a referrers index that is not JSON") from None
    return [m for m in manifests if isinstance(m, dict) and isinstance(m.get("digest"), str)]
