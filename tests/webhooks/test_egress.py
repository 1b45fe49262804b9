"""The egress guard: which addresses a target may have, DNS checked at connect time,
redirects followed by hand and checked, and real requests through it."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from portside.egress import EgressPolicy, IPAddress, Refused, resolve, send
from tests.webhooks.receiver import receiving

STRICT = EgressPolicy(timeout_seconds=5)
PRIVATE_OK = EgressPolicy(allow_private=True, timeout_seconds=5)


def _fixed(*answers: str) -> EgressPolicy:
    def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answers]

    return EgressPolicy(resolver=resolver, timeout_seconds=5)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.1.2.3:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://100.64.0.1/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://localhost:8080/hook", "loopback"),
    ],
)
def test_refused_targets(url: str, why: str) -> None:
    with pytest.raises(Refused, match=why):
        STRICT.check(url)


def test_public_addresses_pass() -> None:
    _fixed("93.184.216.34", "2606:2800:220:1::248").check("https://example.com/hook")


def test_one_bad_answer_refuses_the_name() -> None:
    with pytest.raises(Refused, match=r"example.com \(10.0.0.1\) is a private"):
        _fixed("93.184.216.34", "10.0.0.1").check("https://example.com/hook")


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "/relative", "http://user:pw@example.com/", "http:///x"]
)
def test_malformed_or_unsupported_urls(url: str) -> None:
    with pytest.raises(Refused):
        _fixed("93.184.216.34").check(url)


def test_allow_private_opens_private_ranges_but_not_metadata() -> None:
    PRIVATE_OK.check("http://127.0.0.1/")
    PRIVATE_OK.check("http://10.1.2.3/")
    PRIVATE_OK.check("http://[::1]/")
    with pytest.raises(Refused, match="metadata"):
        PRIVATE_OK.check("http://169.254.169.254/")
    with pytest.raises(Refused, match="multicast"):
        PRIVATE_OK.check("http://224.0.0.1/")


def test_allowlisted_networks_pass_others_do_not() -> None:
    policy = EgressPolicy(allowed=(ipaddress.ip_network("127.0.0.2/32"),))
    policy.check("http://127.0.0.2:9/")
    with pytest.raises(Refused, match="loopback"):
        policy.check("http://127.0.0.1:9/")
    metadata = EgressPolicy(allowed=(ipaddress.ip_network("169.254.169.254/32"),))
    metadata.check("http://169.254.169.254/")


def test_resolve_names_every_answer() -> None:
    assert ipaddress.ip_address("127.0.0.1") in resolve("localhost", 80)


def test_sends_to_an_allowed_target() -> None:
    with receiving() as receiver:
        sent = send(PRIVATE_OK, "POST", receiver.url, content=b'{"a":1}', headers={"X-A": "b"})
        assert sent.status == 200
        [request] = receiver.received
        assert (request.method, request.path, request.body) == ("POST", "/hook", b'{"a":1}')
        assert request.headers["x-a"] == "b"
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_refuses_loopback_at_send_time() -> None:
    with receiving() as receiver:
        with pytest.raises(Refused, match="loopback"):
            send(STRICT, "POST", receiver.url)
        with pytest.raises(Refused, match="loopback"):
            send(STRICT, "POST", receiver.url.replace("127.0.0.1", "localhost"))
        assert receiver.received == []


def test_refuses_ipv6_loopback_at_send_time() -> None:
    with receiving("::1") as receiver:
        with pytest.raises(Refused, match="loopback"):
            send(STRICT, "POST", receiver.url)
        assert send(PRIVATE_OK, "POST", receiver.url).status == 200
        assert len(receiver.received) == 1


def test_dns_is_checked_when_connecting_not_only_when_created() -> None:
    """A name that resolved to a public address when the policy was saved and to
    loopback now (DNS rebinding) is refused at send time, before any connection."""
    answers = [["93.184.216.34"], ["127.0.0.1"]]

    def rebinding(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in answers.pop(0)]

    policy = EgressPolicy(resolver=rebinding, timeout_seconds=5)
    policy.check("http://rebind.test/hook")  # at creation
    with pytest.raises(Refused, match=r"rebind.test \(127.0.0.1\) is a loopback"):
        send(policy, "POST", "http://rebind.test/hook")


def test_connects_to_the_checked_address_with_the_name_as_host() -> None:
    """No second lookup: the connection goes to the address the resolver gave, while
    the request names the host it was addressed to."""
    with receiving() as receiver:

        def resolver(host: str, port: int) -> list[IPAddress]:
            assert host == "hooks.example"
            return [ipaddress.ip_address("127.0.0.1")]

        policy = EgressPolicy(allow_private=True, resolver=resolver, timeout_seconds=5)
        sent = send(policy, "POST", f"http://hooks.example:{receiver.port}/hook")
        assert sent.status == 200
        assert receiver.received[0].headers["host"] == f"hooks.example:{receiver.port}"


def test_a_redirect_to_loopback_is_refused() -> None:
    """The first target is allowed (127.0.0.2 is on the allowlist); its redirect to
    127.0.0.1 is checked like a target and refused, so nothing reaches it."""
    with receiving("127.0.0.1") as inner:
        with receiving("127.0.0.2", redirect_to=inner.url) as outer:
            policy = EgressPolicy(allowed=(ipaddress.ip_network("127.0.0.2/32"),))
            with pytest.raises(Refused, match=r"127\.0\.0\.1 is a loopback"):
                send(policy, "POST", outer.url, content=b"x")
            assert len(outer.received) == 1
        assert inner.received == []


def test_allowed_redirects_are_followed_up_to_the_limit() -> None:
    with receiving() as final, receiving(redirect_to=final.url) as first:
        sent = send(PRIVATE_OK, "POST", first.url, content=b"body")
        assert (sent.status, sent.url) == (200, final.url)
        assert final.received[0].body == b"body"  # 307 keeps the method and body
        limited = EgressPolicy(allow_private=True, max_redirects=0)
        with pytest.raises(Refused, match="more than 0 redirects"):
            send(limited, "POST", first.url)


def test_connection_failures_are_http_errors() -> None:
    with receiving() as receiver:
        port = receiver.port
    with pytest.raises(httpx.ConnectError):
        send(PRIVATE_OK, "POST", f"http://127.0.0.1:{port}/gone")


def test_saving_checks_syntax_and_literal_addresses_but_does_not_resolve() -> None:
    """A name is not looked up when a target is saved (no DNS, or a failing one, must not
    stop an administrator); literal addresses and `localhost` are refused as at connect."""

    def no_dns(host: str, port: int) -> list[IPAddress]:
        raise AssertionError(f"{host} was resolved when saving")

    policy = EgressPolicy(resolver=no_dns, timeout_seconds=5)
    assert policy.check_saved("https://registry.example.invalid/x").host == (
        "registry.example.invalid"
    )
    for url, why in [
        ("http://127.0.0.1:5000", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://169.254.169.254/", "metadata"),
        ("http://localhost:8080/", "loopback"),
        ("http://Registry.LOCALHOST./", "loopback"),
        ("ftp://example.com/", "http"),
        ("http://user:pw@example.com/", "credentials"),
    ]:
        with pytest.raises(Refused, match=why):
            policy.check_saved(url)
    allowed = EgressPolicy(allow_private=True, resolver=no_dns)
    assert allowed.check_saved("http://localhost:5000").port == 5000
    assert allowed.check_saved("http://10.1.2.3/").host == "10.1.2.3"


def test_a_saved_name_that_resolves_to_loopback_is_refused_at_connect() -> None:
    policy = _fixed("127.0.0.1")
    policy.check_saved("http://sneaky.example.com/hook")
    with pytest.raises(Refused, match=r"sneaky.example.com \(127.0.0.1\) is a loopback"):
        send(policy, "POST", "http://sneaky.example.com/hook", content=b"{}")
