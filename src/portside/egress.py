"""Outgoing HTTP requests to addresses users chose (webhook targets; later replication
endpoints), guarded against server-side request forgery.

A user who may configure a target must not be able to make the registry talk to what
only the registry can reach: loopback services, the private network, link-local and
unique-local addresses, and the cloud metadata endpoints. So:

* saving a target checks only what cannot change (`check_saved`: syntax, literal
  addresses, `localhost`), so DNS being down does not stop an administrator;
* every answer for the target's host name is checked at each connection (`check`); one
  refused answer refuses the target, since which answer a connection uses is not ours
  to choose;
* the connection goes to an address that was checked, never to the name (no second
  DNS lookup that a rebinding DNS server could answer differently); the request still
  carries the name in `Host` and, over TLS, in SNI, and the certificate is verified
  against the name;
* redirects are not followed by the HTTP client: `send` follows up to `max_redirects`
  itself, checking each new target as it checked the first;
* proxies from the environment are ignored, and every phase has a timeout.

An administrator may allow private targets (`allow_private`) or particular networks
(`allowed`); metadata addresses are only reachable through `allowed`, and multicast and
unspecified addresses never.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]

# Instance metadata services: AWS, GCP, Azure, OpenStack (169.254.169.254), AWS over
# IPv6, Alibaba Cloud.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_KEPT = 64 * 1024  # of a response, for the delivery history's error text


class Refused(Exception):
    """The target may not be contacted; the message says why, for the person who set it."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise Refused(f"cannot resolve {host!r}: {error.strerror}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_private: bool = False
    allowed: tuple[Network, ...] = ()
    timeout_seconds: float = 10.0
    max_redirects: int = 3
    resolver: Resolver = field(default=resolve, compare=False)

    def refusal(self, address: IPAddress) -> str | None:
        """Why `address` may not be contacted, or None if it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address.version == net.version and address in net for net in self.allowed):
            return None
        if address.is_unspecified:
            return "an unspecified address"
        if address.is_multicast:
            return "a multicast address"
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if self.allow_private:
            return None
        if address.is_loopback:
            return "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if not address.is_global:
            return "a private or reserved address"
        return None

    def check_saved(self, url: str | httpx.URL) -> httpx.URL:
        """The parsed URL if a target may be saved there; Refused otherwise. Only what
        does not change is checked: the syntax, and the address when the host is an IP
        literal or a `localhost` name (RFC 6761: always loopback). A host name is not
        resolved: DNS may be unavailable or answer differently later, and `check` looks
        at every answer each time a connection is made."""
        parsed = _parsed(url)
        literal = _literal(parsed.host)
        if literal is not None:
            why = self.refusal(literal)
            if why is not None:
                raise Refused(f"{parsed.host} is {why}; targets there are not allowed")
        elif _is_localhost(parsed.host):
            for address in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")):
                why = self.refusal(address)
                if why is not None:
                    raise Refused(f"{parsed.host} is {why}; targets there are not allowed")
        return parsed

    def check(self, url: str | httpx.URL) -> tuple[httpx.URL, list[IPAddress]]:
        """The parsed URL and the addresses it may be reached at; Refused otherwise."""
        parsed = _parsed(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = self.resolver(parsed.host, port)
        if not addresses:
            raise Refused(f"{parsed.host!r} has no address")
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                shown = parsed.host if parsed.host == str(address) else f"{parsed.host} ({address})"
                raise Refused(f"{shown} is {why}; targets there are not allowed")
        return parsed, addresses


def _parsed(url: str | httpx.URL) -> httpx.URL:
    """`url` parsed, if it is an absolute http(s) URL without credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise Refused(f"not a valid URL: {error}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Refused("the URL must be absolute http:// or https://")
    if parsed.userinfo:
        raise Refused("the URL must not contain credentials")
    return parsed


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _is_localhost(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True, slots=True)
class Sent:
    """What a target answered (after any redirects) and how long it took."""

    status: int
    body: bytes
    url: str
    seconds: float
    headers: Mapping[str, str] = field(default_factory=dict)  # names in lowercase


def send(
    policy: EgressPolicy,
    method: str,
    url: str,
    *,
    content: bytes = b"",
    headers: Mapping[str, str] | None = None,
    verify: bool = True,
    max_body: int = _BODY_KEPT,
    follow: bool = True,
) -> Sent:
    """One request, its redirects followed under `policy` (unless not `follow`: then a
    redirect is the answer). At most `max_body` bytes of the answer are read (a longer
    body is cut there). Refused: a target (the first or a redirect's) is not allowed,
    or too many redirects; httpx.HTTPError: the request failed (connection, TLS,
    timeout)."""
    started = time.monotonic()

    def read(response: httpx.Response) -> bytes:
        return _kept(response, max_body)

    status, body, final, answer = _follow(
        policy,
        method,
        url,
        content=content,
        headers=headers,
        verify=verify,
        read=read,
        follow=follow,
    )
    lowered = {name.lower(): value for name, value in answer.items()}
    return Sent(status, body, final, time.monotonic() - started, lowered)


Reader = Callable[[httpx.Response], bytes]


def _follow(
    policy: EgressPolicy,
    method: str,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str] | None,
    verify: bool,
    read: Reader,
    follow: bool = True,
) -> tuple[int, bytes, str, httpx.Headers]:
    """Send, following redirects (each target checked); the final answer's status, what
    `read` made of its body, its URL and headers."""
    for _hop in range(policy.max_redirects + 1):
        target, addresses = policy.check(url)
        status, body, answer = _send_once(
            policy,
            method=method,
            target=target,
            addresses=addresses,
            content=content,
            headers=headers or {},
            verify=verify,
            read=read,
        )
        location = answer.get("location")
        if not follow or status not in _REDIRECTS or location is None:
            return status, body, str(target), answer
        url = str(target.join(location))
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, content = "GET", b""  # what browsers and HTTP clients do
    raise Refused(f"more than {policy.max_redirects} redirects")


def _kept(response: httpx.Response, limit: int = _BODY_KEPT) -> bytes:
    """The start of a response's body (up to `limit` bytes)."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= limit:
            return bytes(body[:limit])
    return bytes(body)


class TooLarge(Exception):
    """A download larger than the caller allowed."""


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A GET whose body went to a file: status 200 (written), 304 (not modified) or
    another status (nothing written; `error` holds the start of the body)."""

    status: int
    url: str
    size: int
    etag: str | None
    last_modified: str | None
    error: bytes = b""


def download(
    policy: EgressPolicy,
    url: str,
    sink: BinaryIO,
    *,
    headers: Mapping[str, str] | None = None,
    max_bytes: int,
) -> Downloaded:
    """GET `url` under `policy` and stream a 200's body into `sink` (memory stays
    bounded). Send If-None-Match/If-Modified-Since in `headers` for a conditional GET.
    Refused, httpx.HTTPError as `send`; TooLarge past `max_bytes`."""
    written = 0

    def read(response: httpx.Response) -> bytes:
        nonlocal written
        if response.status_code != 200:
            return b"" if response.status_code in _REDIRECTS else _kept(response)
        for chunk in response.iter_bytes():
            written += len(chunk)
            if written > max_bytes:
                raise TooLarge(f"{url}: larger than {max_bytes} bytes")
            sink.write(chunk)
        return b""

    status, body, final, answer = _follow(
        policy, "GET", url, content=b"", headers=headers, verify=True, read=read
    )
    return Downloaded(
        status=status,
        url=final,
        size=written,
        etag=answer.get("etag"),
        last_modified=answer.get("last-modified"),
        error=body,
    )


def _send_once(
    policy: EgressPolicy,
    *,
    method: str,
    target: httpx.URL,
    addresses: list[IPAddress],
    content: bytes,
    headers: Mapping[str, str],
    verify: bool,
    read: Reader,
) -> tuple[int, bytes, httpx.Headers]:
    """Connect to the checked addresses in turn (the next only if connecting failed)."""
    host_header = target.netloc.decode("ascii")
    extensions = {}
    if target.scheme == "https" and not _is_ip_literal(target.host):
        extensions["sni_hostname"] = target.host
    failure: httpx.ConnectError | None = None
    for address in addresses:
        pinned = target.copy_with(host=str(address))
        with httpx.Client(
            timeout=policy.timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxies from the environment
            verify=verify,
            limits=httpx.Limits(max_keepalive_connections=0),
        ) as client:
            request = client.build_request(
                method,
                pinned,
                content=content,
                headers={**headers, "Host": host_header},
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as error:
                failure = error
                continue
            try:
                body = read(response)
            finally:
                response.close()
            return response.status_code, body, response.headers
    assert failure is not None
    raise failure


def _is_ip_literal(host: str) -> bool:
    return _literal(host) is not None


def policy_from(
    *,
    allow_private: bool,
    allowed_networks: tuple[str, ...],
    timeout_seconds: float,
    max_redirects: int,
) -> EgressPolicy:
    return EgressPolicy(
        allow_private=allow_private,
        allowed=tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks),
        timeout_seconds=timeout_seconds,
        max_redirects=max_redirects,
    )


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that applies `policy` to every request, for clients that need
    what `send` does not give: kept-alive connections, streamed request and response
    bodies, a CA bundle. Each request's host is checked (`EgressPolicy.check`) and the
    connection goes to a checked address, carrying the name in `Host` and SNI as `send`
    does; redirects the client follows come back through here and are checked the same.
    Each origin (scheme, host, port) gets its own connection pool, so a kept-alive
    connection is only reused for the name it was opened (and its certificate checked)
    for. `verify` is True, False or an `ssl.SSLContext` (e.g. from `tls_context`)."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        verify: bool | ssl.SSLContext = True,
        max_connections: int = 8,
    ) -> None:
        self.policy = policy
        self.verify = verify
        self.max_connections = max_connections
        self._pools: dict[tuple[str, str, int], httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def _pool(self, target: httpx.URL) -> httpx.HTTPTransport:
        key = (target.scheme, target.host, target.port or 0)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = httpx.HTTPTransport(
                    verify=self.verify,
                    trust_env=False,
                    limits=httpx.Limits(
                        max_connections=self.max_connections,
                        max_keepalive_connections=self.max_connections,
                    ),
                )
                self._pools[key] = pool
            return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target, addresses = self.policy.check(request.url)
        except Refused as refused:
            # An httpx error, so clients see it where they see other request failures.
            raise RefusedRequest(str(refused), request=request) from None
        pool = self._pool(target)
        extensions = dict(request.extensions)
        if target.scheme == "https" and not _is_ip_literal(target.host):
            extensions["sni_hostname"] = target.host
        headers = request.headers.copy()
        headers["Host"] = target.netloc.decode("ascii")
        failure: httpx.ConnectError | None = None
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                target.copy_with(host=str(address)),
                headers=headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return pool.handle_request(pinned)
            except httpx.ConnectError as error:  # nothing was sent: the next address
                failure = error
        assert failure is not None
        raise failure

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


class RefusedRequest(httpx.TransportError):
    """A request `GuardedTransport` did not send: the egress policy refuses its target
    (the message says why, as `Refused` does)."""


def tls_context(*, verify: bool, ca_pem: str | None = None) -> bool | ssl.SSLContext:
    """What `GuardedTransport(verify=)` takes: False (no verification), True (the system's
    CAs) or a context trusting the system's CAs plus `ca_pem` (PEM text of one or more
    certificates). ValueError if `ca_pem` holds no certificate."""
    if not verify:
        return False
    if not ca_pem:
        return True
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as error:
        raise ValueError(f"the CA bundle is not PEM certificates: {error}") from None
    return context
