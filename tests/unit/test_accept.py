"""api.manifests.accepts: does an Accept header admit a manifest's media type?"""

from __future__ import annotations

import pytest

from portside.api.manifests import accepts

OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        OCI,
        "*/*",
        "application/*",
        f"{DOCKER}, {OCI}",
        f"{DOCKER},{OCI}",
        f"{OCI};q=0.5",
        f"{OCI}; q=1",
        OCI.upper(),
        f" {OCI} ",
    ],
)
def test_accepted(header: str | None) -> None:
    assert accepts(header, OCI)


@pytest.mark.parametrize(
    "header",
    [
        DOCKER,
        "text/*",
        "application/json",
        f"{OCI};q=0",
        f"{OCI}; q=0",
        f"{OCI};q=0.0",
        f"{OCI};q=0.00",
        f"{OCI};q=0.000",
        f"{DOCKER}, {OCI};q=0",
    ],
)
def test_refused(header: str) -> None:
    assert not accepts(header, OCI)
