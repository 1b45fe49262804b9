"""Property tests: whatever a client sends, the registry answers with a status below 500,
and every error is the spec's JSON error body."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.app import PortsideApp
from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    RawResponse,
    canonical,
    descriptor,
    raw_request,
    sha256,
)

REPO = "acme/app"
CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"fuzz layer"

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

WORDS = [
    "v2",
    "acme",
    "app",
    "blobs",
    "uploads",
    "manifests",
    "tags",
    "list",
    "referrers",
    "_catalog",
    "latest",
    "..",
    ".",
    "",
    sha256(LAYER),
    sha256(b"unknown"),
    "sha256:",
    "sha512:abc",
    "md5:00",
    "UPPER",
    "a" * 300,
    "%2F",
    "\n",
    "\x00",
    "é",
]

segment = st.one_of(
    st.sampled_from(WORDS),
    st.text(st.characters(codec="utf-8", exclude_characters="/"), max_size=12),
)
names = st.one_of(
    st.just(REPO),
    st.lists(segment, min_size=1, max_size=3).map("/".join),
)
routes = st.one_of(
    st.builds("blobs/{}".format, st.sampled_from([sha256(LAYER), sha256(CONFIG)]) | segment),
    st.builds("manifests/{}".format, st.sampled_from(["latest", "v1"]) | segment),
    st.just("tags/list"),
    st.builds("referrers/{}".format, segment),
    st.builds("blobs/uploads/{}".format, segment),
    st.lists(segment, max_size=3).map("/".join),
)
paths = st.one_of(
    st.builds("/v2/{}/{}".format, names, routes),
    st.lists(segment, min_size=0, max_size=7).map(lambda parts: "/v2/" + "/".join(parts)),
)
methods = st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "XYZ"])
header_names = st.sampled_from(
    [b"range", b"content-range", b"content-length", b"accept", b"content-type", b"x-other"]
)
header_values = st.one_of(
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20)),
    st.sampled_from(
        [
            b"bytes=0-1",
            b"bytes=-1",
            b"bytes=1-",
            b"bytes=x-1",
            b"0-0",
            b"5-2",
            b"bytes 0-4/*",
            b"99999999999999999999999",
            b"-1",
            b"\xb2",
            b"*/*",
            OCI_MANIFEST.encode(),
        ]
    ),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=4)
queries = st.one_of(
    st.just(b""),
    st.sampled_from(
        [
            b"n=2",
            b"n=-1",
            b"n=%C2%B2",
            b"last=z",
            b"n=99999999999999999999999999",
            f"digest={sha256(b'')}".encode(),
            f"digest={sha256(LAYER)}".encode(),
            b"digest=sha256:bad",
            f"mount={sha256(LAYER)}&from=acme/app".encode(),
            f"mount={sha256(LAYER)}&from=BAD".encode(),
            b"artifactType=x",
            b"%ff=%fe",
        ]
    ),
    st.binary(max_size=30),
)
bodies = st.lists(st.binary(max_size=64), max_size=3)


def seed(app: PortsideApp) -> None:
    for blob in (CONFIG, LAYER):
        response = raw_request(
            app,
            "POST",
            f"/v2/{REPO}/blobs/uploads/",
            query=f"digest={sha256(blob)}".encode(),
            chunks=[blob],
        )
        assert response.status == 201
    body = canonical(valid_manifest())
    response = raw_request(
        app,
        "PUT",
        f"/v2/{REPO}/manifests/latest",
        headers=[(b"content-type", OCI_MANIFEST.encode())],
        chunks=[body],
    )
    assert response.status == 201


def valid_manifest() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", CONFIG),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", LAYER)],
    }


def check(response: RawResponse, context: object) -> None:
    assert response.status < 500, (context, response.status, response.body[:500])
    assert response.complete, context
    if response.status >= 400 and response.body:
        body = json.loads(response.body)
        assert isinstance(body["errors"], list), context
        assert body["errors"], context
        for entry in body["errors"]:
            assert isinstance(entry["code"], str), context
            assert isinstance(entry["message"], str), context


@FUZZ
@given(method=methods, path=paths, query=queries, headers=headers, body=bodies)
def test_random_requests_never_5xx(
    app: PortsideApp,
    *,
    method: str,
    path: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: list[bytes],
) -> None:
    response = raw_request(app, method, path, query=query, headers=headers, chunks=body)
    check(response, (method, path, query, headers, body))


range_values = st.one_of(
    st.sampled_from(
        [
            b"bytes=0-1",
            b"bytes=-1",
            b"bytes=1-",
            b"bytes=x-1",
            b"bytes=1.5-2",
            b"bytes=5-2",
            b"bytes=0-1,2-3",
            b"bytes=\xb2-1",
            b"bytes=-0",
            b"items=1-2",
            b"bytes=99999999999999-",
        ]
    ),
    st.builds(
        lambda a, b: f"bytes={a}-{b}".encode(),
        st.one_of(st.integers(0, 100).map(str), st.text(max_size=4)),
        st.one_of(st.integers(0, 100).map(str), st.text(max_size=4)),
    ),
)
accept_values = st.one_of(
    st.sampled_from(
        [OCI_MANIFEST.encode(), b"*/*", b"application/*", b"text/html;q=0", b";;;", b",,,"]
    ),
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20)),
)
upload_headers = st.one_of(
    st.sampled_from([b"0-3", b"5-2", b"bytes 0-3/*", b"x-y", b"\xb2-3", b"-", b"0-"]),
    st.binary(max_size=12).map(lambda b: bytes(c for c in b if c >= 0x20)),
)
length_values = st.one_of(
    st.sampled_from([b"4", b"0", b"-1", b"\xb2", b"99999999999999999999", b" 4"]),
    st.integers(0, 10).map(lambda n: str(n).encode()),
)


@FUZZ
@given(
    target=st.sampled_from(
        [
            ("GET", f"/v2/{REPO}/blobs/{sha256(LAYER)}"),
            ("HEAD", f"/v2/{REPO}/blobs/{sha256(LAYER)}"),
            ("GET", f"/v2/{REPO}/manifests/latest"),
            ("HEAD", f"/v2/{REPO}/manifests/latest"),
            ("GET", f"/v2/{REPO}/tags/list"),
            ("PATCH", "upload"),
            ("PUT", "upload"),
        ]
    ),
    range_value=st.none() | range_values,
    accept=st.none() | accept_values,
    content_range=st.none() | upload_headers,
    length=st.none() | length_values,
)
def test_random_headers_on_real_content_never_5xx(
    app: PortsideApp,
    *,
    target: tuple[str, str],
    range_value: bytes | None,
    accept: bytes | None,
    content_range: bytes | None,
    length: bytes | None,
) -> None:
    if not getattr(app, "_fuzz_seeded", False):
        seed(app)
        app._fuzz_seeded = True  # type: ignore[attr-defined]
    method, path = target
    query = b""
    if path == "upload":
        started = raw_request(app, "POST", f"/v2/{REPO}/blobs/uploads/")
        location = started.header("location")
        assert location
        path = location
        query = f"digest={sha256(b'data')}".encode()
    headers = [
        (name, value)
        for name, value in (
            (b"range", range_value),
            (b"accept", accept),
            (b"content-range", content_range),
            (b"content-length", length),
        )
        if value is not None
    ]
    response = raw_request(app, method, path, query=query, headers=headers, chunks=[b"data"])
    check(response, (method, path, headers))


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from([sha256(LAYER), sha256(CONFIG), OCI_MANIFEST, OCI_INDEX]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
manifest_keys = st.sampled_from(
    [
        "schemaVersion",
        "mediaType",
        "config",
        "layers",
        "manifests",
        "subject",
        "artifactType",
        "annotations",
    ]
)
descriptor_keys = st.sampled_from(["mediaType", "digest", "size", "urls", "annotations"])


@st.composite
def mutated_manifests(draw: st.DrawFn) -> bytes:
    """A valid manifest with one field replaced, removed or added at top or descriptor level."""
    document = valid_manifest()
    if draw(st.booleans()):
        document["mediaType"] = OCI_INDEX
        document.pop("config")
        document.pop("layers")
        document["manifests"] = [descriptor(OCI_MANIFEST, b"child")]
    action = draw(st.sampled_from(["set", "drop", "descriptor", "subject"]))
    if action == "set":
        document[draw(manifest_keys)] = draw(json_values)
    elif action == "drop":
        document.pop(draw(manifest_keys), None)
    elif action == "descriptor":
        key = "manifests" if "manifests" in document else "layers"
        item = dict(document[key][0])
        item[draw(descriptor_keys)] = draw(json_values)
        document[key] = [item]
    else:
        document["subject"] = {
            "mediaType": draw(st.text(max_size=300)),
            "digest": draw(st.sampled_from([sha256(b"s"), "sha256:x", "x"])),
            "size": draw(st.integers(min_value=-1, max_value=2**64)),
        }
    return json.dumps(document).encode()


manifest_bodies = st.one_of(
    mutated_manifests(),
    st.sampled_from([10, 500, 5_000]).map(lambda n: b"[" * n + b"]" * n),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)
content_types = st.one_of(
    st.sampled_from(
        [
            OCI_MANIFEST,
            OCI_INDEX,
            "application/json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "",
            "text/plain; charset=utf-8",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
)
references = st.one_of(
    st.sampled_from(["latest", "v1", sha256(b"x"), "sha256:abc", "sha512:" + "a" * 128]),
    st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=20),
)


@FUZZ
@given(body=manifest_bodies, content_type=content_types, reference=references)
def test_random_manifests_never_5xx(
    app: PortsideApp, body: bytes, content_type: str, reference: str
) -> None:
    if not getattr(app, "_fuzz_seeded", False):
        seed(app)
        app._fuzz_seeded = True  # type: ignore[attr-defined]
    response = raw_request(
        app,
        "PUT",
        f"/v2/{REPO}/manifests/{reference}",
        headers=[(b"content-type", content_type.encode("latin-1"))],
        chunks=[body],
    )
    check(response, (reference, content_type, body[:300]))


digests = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda alg, enc: f"{alg}:{enc}",
        st.sampled_from(["sha256", "sha512", "md5", "SHA256", "sha256+b64", "a.b", ""]),
        st.text("0123456789abcdefABCDEF=_-g", max_size=130),
    ),
)


@FUZZ
@given(digest=digests)
def test_random_digests_never_5xx(app: PortsideApp, digest: str) -> None:
    for method, path, query in (
        ("GET", f"/v2/{REPO}/blobs/{digest}", b""),
        ("GET", f"/v2/{REPO}/manifests/{digest}", b""),
        ("GET", f"/v2/{REPO}/referrers/{digest}", b""),
        ("DELETE", f"/v2/{REPO}/blobs/{digest}", b""),
        ("POST", f"/v2/{REPO}/blobs/uploads/", b"digest=" + digest.encode()),
        ("POST", f"/v2/{REPO}/blobs/uploads/", b"mount=" + digest.encode() + b"&from=x"),
    ):
        if "/" in digest and "uploads" not in path:
            continue
        check(raw_request(app, method, path, query=query, chunks=[b"data"]), (method, path, query))
