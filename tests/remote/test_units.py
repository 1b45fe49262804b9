"""The pure parts of talking to other registries: auth challenges, Retry-After, the
retry waits, endpoint kinds, the destination naming (Harbor's flattening), the bandwidth
limit, and credential encryption."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portside.auth.errors import Invalid
from portside.endpoints.secrets import Cipher, SecretUnreadable, new_key
from portside.remote.auth import parse_challenges, pick_challenge
from portside.remote.kinds import remote_repository
from portside.remote.retry import RetryPolicy, parse_retry_after
from portside.replication.naming import Unflattenable, destination
from portside.replication.throttle import limited


def test_challenges() -> None:
    [bearer] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )
    assert bearer.scheme == "bearer"
    assert bearer.realm == "https://auth.docker.io/token"
    assert bearer.service == "registry.docker.io"
    assert bearer.scopes == ("repository:samalba/my-app:pull,push",)
    both = parse_challenges('Basic realm="x y", Bearer realm="https://a/t", service=svc')
    assert [c.scheme for c in both] == ["basic", "bearer"]
    assert both[1].service == "svc"
    picked = pick_challenge(['Basic realm="r"', 'Bearer realm="https://a/t"'])
    assert picked is not None
    assert picked.scheme == "bearer"  # preferred: it scopes access
    assert pick_challenge(['Basic realm="registry"'])
    assert pick_challenge(["Negotiate"]) is None
    assert pick_challenge(['Bearer service="no-realm"']) is None
    quoted = parse_challenges(r'Bearer realm="https://a/t?x=\"y\"",scope="a b"')
    assert quoted[0].realm == 'https://a/t?x="y"'
    assert quoted[0].scopes == ("a", "b")


def test_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    policy = RetryPolicy(attempts=5, base_seconds=1, max_wait=10)
    assert policy.wait(1, "120") == 10  # capped
    for attempt in range(1, 8):
        assert 0 <= policy.wait(attempt) <= min(10, 2 ** (attempt - 1))


def test_docker_hub_names() -> None:
    assert remote_repository("docker-hub", "nginx") == "library/nginx"
    assert remote_repository("docker-hub", "bitnami/nginx") == "bitnami/nginx"
    assert remote_repository("distribution", "nginx") == "nginx"


@pytest.mark.parametrize(
    ("name", "namespace", "level", "expected"),
    [
        ("a/b/c/img", None, 1, "a/b/c/img"),
        ("a/b/c/img", "ns", -1, "ns/img"),
        ("a/b/c/img", "ns", 0, "ns/a/b/c/img"),
        ("a/b/c/img", "ns", 1, "ns/b/c/img"),
        ("a/b/c/img", "ns", 2, "ns/c/img"),
        ("a/b/c/img", "ns", 3, "ns/img"),
        ("a/img", "dr/site", 1, "dr/site/img"),
    ],
)
def test_flattening(name: str, namespace: str | None, level: int, expected: str) -> None:
    assert destination(name, namespace, level) == expected


def test_flattening_too_far() -> None:
    with pytest.raises(Unflattenable, match="flattening 2 levels"):
        destination("a/img", "ns", 2)


def test_bandwidth_limit_paces_the_stream() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    chunks = iter([b"x" * 1000] * 5)
    out = list(limited(chunks, 1000.0, clock=lambda: now[0], sleep=sleep))
    assert len(out) == 5
    assert now[0] == pytest.approx(5.0)  # 5000 bytes at 1000 bytes/s
    assert list(limited(iter([b"a"]), None)) == [b"a"]


def test_cipher() -> None:
    key = new_key()
    stored = Cipher(key).encrypt("s3cret")
    assert "s3cret" not in stored
    assert Cipher(key).decrypt(stored) == "s3cret"
    with pytest.raises(SecretUnreadable, match=r"secrets\.encryption_key"):
        Cipher(new_key()).decrypt(stored)
    with pytest.raises(Invalid, match=r"secrets\.encryption_key"):
        Cipher(None).encrypt("s3cret")
