"""The artifact page after pushing real content over /v2: an image's layers, config and
history; an index's platforms; referrers and their subject; the manifest; tag changes and
deletes from the page; private artifacts hidden; everything a pusher controls (labels,
env, history, annotations, platforms, tags) escaped."""

from __future__ import annotations

from typing import Any

from markupsafe import escape

from portside.ui.filters import short_digest, size
from portside.ui.web import artifact_url, repository_url
from tests.api.helpers import (
    OCI_INDEX,
    Manifest,
    canonical,
    make_artifact,
    make_image,
    push_manifest,
    sha256,
    tags_of,
)
from tests.auth.conftest import Registry
from tests.mgmt.helpers import SBOM_TYPE, Content
from tests.ui.conftest import REPO, Browser, admin_client, browser_for, host_of

COSIGN = "application/vnd.dev.cosign.artifact.sig.v1+json"
SPDX = "application/spdx+json"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def page_of(browser: Browser, digest: str, repo: str = REPO) -> str:
    response = browser.get(artifact_url(repo, digest))
    assert response.status_code == 200, response.text
    return response.text


def section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    return html[start : html.index("</section>", start)]


def rich_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "created": "2024-05-01T12:00:00Z",
        "author": "Ada",
        "config": {
            "Entrypoint": ["/bin/app", "--serve"],
            "Cmd": ["--port", "8080"],
            "Env": ["PATH=/usr/local/bin:/usr/bin", "MODE=production"],
            "WorkingDir": "/srv/app",
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"org.opencontainers.image.source": "https://example.com/app"},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2024-05-01T11:00:00Z", "created_by": "ADD rootfs.tar /"},
            {"created_by": "ENV MODE=production", "empty_layer": True},
            {"created": "2024-05-01T11:59:00Z", "created_by": "RUN make install"},
        ],
    }
    config.update(overrides)
    return config


# -- images -----------------------------------------------------------------------------


def test_image_page_shows_layers_referrers_and_manifest(
    registry: Registry, content: Content
) -> None:
    html = page_of(browser_for(registry, "guest"), content.image.digest)
    image = content.image
    assert f'<a href="{repository_url(REPO)}">{REPO}</a>' in html
    assert f"<code>{image.digest}</code>" in html
    assert f'data-copy="{image.digest}"' in html
    assert ">v1<" in html
    assert f"<dt>Size</dt><dd>{size(image.size)} " in html
    assert '<span class="badge">linux/amd64</span>' in html
    layers = section(html, "layers-heading")
    for layer in image.layers:
        digest = sha256(layer)
        row = next(r for r in layers.split("<tr") if f'data-copy="{digest}"' in r)
        assert short_digest(digest) in row
        assert size(len(layer)) in row
    assert f'<td class="num">{size(sum(len(x) for x in image.layers))}</td>' in layers
    assert f"{size(len(image.config))}</dd>" in html  # the config blob
    host = host_of(registry)
    assert f"docker pull {host}/{REPO}@{image.digest}" in html
    assert f"podman pull {host}/{REPO}@{image.digest}" in html
    referrers = section(html, "referrers-heading")
    assert SBOM_TYPE in referrers
    assert artifact_url(REPO, content.artifact.digest) in referrers
    assert size(content.artifact.size) in referrers
    assert "has not been scanned" in section(html, "vulnerabilities-heading")
    manifest = section(html, "manifest-heading")
    assert "<pre" in manifest
    assert "&#34;schemaVersion&#34;: 2" in manifest


def test_image_config_and_history(registry: Registry) -> None:
    client = admin_client(registry)
    config = canonical(rich_config())
    layers = [b"root filesystem layer", b"installed files, a longer layer"]
    image = make_image(client, REPO, config=config, layers=layers)
    push_manifest(client, REPO, "rich", image)
    html = page_of(browser_for(registry, "guest"), image.digest)
    settings = section(html, "config-heading")
    assert "<code>/bin/app --serve</code>" in settings
    assert "<code>--port 8080</code>" in settings
    assert "<code>/srv/app</code>" in settings
    assert "<code>app</code>" in settings
    assert "<code>8080/tcp</code>" in settings
    assert "<code>/data</code>" in settings
    assert "<code>PATH=/usr/local/bin:/usr/bin</code>" in settings
    assert "<code>MODE=production</code>" in settings
    assert "linux/arm64/v8" in settings
    assert "Ada" in settings
    assert "<code>org.opencontainers.image.source</code>" in settings
    assert "https://example.com/app" in settings
    assert '<dt>Created</dt><dd><time datetime="2024-05-01T12:00:00+00:00"' in html
    history = section(html, "history-heading")
    rows = history.split("<tr")[2:]
    assert len(rows) == 3
    assert "ADD rootfs.tar /" in rows[0]
    assert size(len(layers[0])) in rows[0]
    assert "ENV MODE=production" in rows[1]
    assert "no layer" in rows[1]
    assert 'class="empty-layer"' in rows[1]
    assert "RUN make install" in rows[2]
    assert size(len(layers[1])) in rows[2]


# -- indexes, referrers -----------------------------------------------------------------


def test_index_page_lists_its_platforms(registry: Registry, content: Content) -> None:
    html = page_of(browser_for(registry, "guest"), content.index.digest)
    assert f"<dt>Size</dt><dd>{size(content.index_size)} " in html
    assert "all platforms" in html
    platforms = section(html, "platforms-heading")
    for child, platform in zip(content.children, ["linux/amd64", "linux/arm64/v8"], strict=True):
        row = next(r for r in platforms.split("<tr") if child.digest in r)
        assert f'<th scope="row">{platform}</th>' in row
        assert f'href="{artifact_url(REPO, child.digest)}"' in row
        assert size(child.size) in row
        assert ">Image<" in row
    assert "layers-heading" not in html
    assert "docker pull" in html


def test_referrer_page_links_its_subject(registry: Registry, content: Content) -> None:
    html = page_of(browser_for(registry, "guest"), content.artifact.digest)
    assert "<dt>Refers to</dt>" in html
    assert f'href="{artifact_url(REPO, content.image.digest)}"' in html
    assert SBOM_TYPE in html
    assert "Files" in section(html, "layers-heading")
    assert f"oras pull {host_of(registry)}/{REPO}@{content.artifact.digest}" in html


def test_well_known_referrer_types_in_words(registry: Registry, content: Content) -> None:
    client = admin_client(registry)
    for kind, payload in ((COSIGN, b"signature"), (SPDX, b'{"spdxVersion":"SPDX-2.3"}')):
        pushed = make_artifact(
            client, REPO, content.image.manifest, artifact_type=kind, payload=payload
        )
        push_manifest(client, REPO, pushed.digest, pushed)
    referrers = section(
        page_of(browser_for(registry, "guest"), content.image.digest), "referrers-heading"
    )
    assert "Cosign signature" in referrers
    assert "SBOM (SPDX)" in referrers
    assert "(3)" in referrers


# -- changes ----------------------------------------------------------------------------


def test_tag_changes_return_to_the_artifact_page(registry: Registry, content: Content) -> None:
    browser = browser_for(registry, "maintainer")
    here = artifact_url(REPO, content.image.digest)
    page_of(browser, content.image.digest)
    form = {"digest": content.image.digest, "back": "artifact"}
    response = browser.post(f"/repositories/{REPO}/-/tags", {**form, "tag": "stable"})
    assert str(response.url).endswith(here)
    assert "Tag stable now points at" in response.text
    response = browser.post(f"/repositories/{REPO}/-/tags/v1/delete", form)
    assert str(response.url).endswith(here)
    assert "Tag v1 removed" in response.text
    assert tags_of(admin_client(registry), REPO) == ["multi", "stable"]
    response = browser.post(f"{here}/delete", {"back": "artifact"})
    assert str(response.url).endswith(repository_url(REPO))
    assert f"Artifact {short_digest(content.image.digest)} and its tags deleted." in response.text


def test_guest_sees_no_change_forms_and_is_refused_in_words(
    registry: Registry, content: Content
) -> None:
    browser = browser_for(registry, "guest")
    html = page_of(browser, content.image.digest)
    assert "Add tag" not in html
    assert "Danger zone" not in html
    assert 'aria-label="Remove tag v1"' not in html
    response = browser.post(
        f"{artifact_url(REPO, content.image.digest)}/delete", {"back": "artifact"}
    )
    assert str(response.url).endswith(artifact_url(REPO, content.image.digest))
    assert "Could not delete artifact" in response.text
    assert "you may not delete in repository" in response.text


def test_private_artifact_looks_missing(registry: Registry, content: Content) -> None:
    outsider = browser_for(registry, "outsider")
    existing = outsider.get(artifact_url(REPO, content.image.digest))
    other = outsider.get(artifact_url("acme/team/nothing", content.image.digest))
    assert existing.status_code == other.status_code == 404
    assert existing.text.replace(REPO, "X") == other.text.replace("acme/team/nothing", "X")
    anonymous = registry.as_caller({}).get(
        artifact_url(REPO, content.image.digest), follow_redirects=False
    )
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


def test_unknown_artifact_is_not_found(registry: Registry, content: Content) -> None:
    response = browser_for(registry, "maintainer").get(artifact_url(REPO, "sha256:" + "0" * 64))
    assert response.status_code == 404
    assert "no artifact" in response.text


# -- hostile content --------------------------------------------------------------------


def assert_escaped(html: str) -> None:
    for raw in (SCRIPT, IMG, "<img src=x", "<script>alert", "onerror=alert(1)>"):
        assert raw not in html
    assert str(escape(SCRIPT)) in html
    assert str(escape(IMG)) in html


def test_pusher_controlled_values_are_escaped(registry: Registry) -> None:
    client = admin_client(registry)
    hostile = {SCRIPT: IMG, IMG: SCRIPT}
    config = rich_config(
        author=SCRIPT,
        config={
            "Entrypoint": [SCRIPT],
            "Cmd": IMG,
            "Env": [f"X={SCRIPT}", f"Y={IMG}"],
            "WorkingDir": IMG,
            "User": SCRIPT,
            "ExposedPorts": {IMG: {}},
            "Labels": hostile,
        },
        history=[
            {"created_by": f"/bin/sh -c echo '{SCRIPT}'", "comment": IMG},
            {"created_by": IMG, "empty_layer": True},
        ],
    )
    image = make_image(client, REPO, config=canonical(config), layers=[b"one layer"])
    annotated = Manifest(canonical({**image.document, "annotations": hostile}), image.media_type)
    push_manifest(client, REPO, "v1", annotated)
    child = make_image(client, REPO, seed="child")
    push_manifest(client, REPO, child.digest, child)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [child.descriptor(platform={"os": SCRIPT, "architecture": IMG})],
        "annotations": hostile,
    }
    push_manifest(client, REPO, "multi", Manifest(canonical(index), OCI_INDEX))

    browser = browser_for(registry, "maintainer")
    image_page = page_of(browser, annotated.digest)
    assert_escaped(image_page)
    assert f"<code>{escape(SCRIPT)}</code>" in section(image_page, "labels-heading")
    assert str(escape(SCRIPT)) in section(image_page, "annotations-heading")
    assert str(escape(IMG)) in section(image_page, "history-heading")
    index_digest = Manifest(canonical(index), OCI_INDEX).digest
    assert_escaped(page_of(browser, index_digest))
    assert_escaped(browser.get(repository_url(REPO)).text)  # index platforms

    # Tags cannot hold markup (the registry refuses them), but the refusal repeats the
    # tag, and the filter box repeats what was searched for.
    page_of(browser, annotated.digest)
    response = browser.post(
        f"/repositories/{REPO}/-/tags",
        {"digest": annotated.digest, "tag": SCRIPT + IMG, "back": "artifact"},
    )
    assert "Could not add tag" in response.text
    assert_escaped(response.text)
    filtered = browser.get(repository_url(REPO), params={"tag": SCRIPT + IMG})
    assert filtered.status_code == 200
    assert_escaped(filtered.text)
