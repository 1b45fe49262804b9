"""The repository page: facts, pull commands and the artifact list (tags, digests, types,
sizes, platforms) after pushing real content over /v2; the tag filter, sorting and
paging; adding and removing tags, deleting an artifact or the repository, with the forms
shown only to roles that may use them and every refusal said in words; private
repositories look exactly like missing ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.ui import artifacts
from portside.ui.filters import short_digest, size
from portside.ui.routes import repository
from portside.ui.web import artifact_url
from tests.api.helpers import (
    OCI_MANIFEST,
    Manifest,
    canonical,
    image_document,
    push_blob,
    push_image,
    push_manifest,
    tags_of,
)
from tests.auth.conftest import Registry, populated
from tests.mgmt.helpers import SBOM_TYPE, Content, push_content
from tests.ui.conftest import REPO, Browser, admin_client, browser_for, host_of

PAGE = f"/repositories/{REPO}"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def row_of(html: str, digest: str) -> str:
    """The table row that links to this artifact."""
    rows = [row for row in html.split("<tr") if artifact_url(REPO, digest) in row]
    assert len(rows) == 1, digest
    return rows[0]


def signed_in(registry: Registry, user: str) -> Browser:
    browser = browser_for(registry, user)
    assert browser.get(PAGE).status_code == 200
    return browser


# -- what the page shows ----------------------------------------------------------------


def test_repository_page_shows_facts_pull_commands_and_artifacts(
    registry: Registry, content: Content
) -> None:
    page = browser_for(registry, "guest").get(PAGE)
    assert page.status_code == 200
    html = page.text
    assert '<a href="/projects/acme">acme</a>' in html
    assert "<h1>acme/team/app</h1>" in html
    assert "<dt>Artifacts</dt><dd>5</dd>" in html
    assert "<dt>Tags</dt><dd>2</dd>" in html
    assert f"<dt>Size</dt><dd>{size(content.repository_size)}</dd>" in html
    # No `latest` tag: the newest tagged artifact's tag (the index was pushed after v1).
    host = host_of(registry)
    assert f"docker pull {host}/{REPO}:multi" in html
    assert f"podman pull {host}/{REPO}:multi" in html

    index = row_of(html, content.index.digest)
    assert ">multi<" in index
    assert ">Index<" in index
    assert "linux/amd64" in index
    assert "linux/arm64/v8" in index
    assert size(content.index_size) in index

    image = row_of(html, content.image.digest)
    assert ">v1<" in image
    assert ">Image<" in image
    assert "linux/amd64" in image
    assert size(content.image.size) in image
    assert short_digest(content.image.digest) in image
    assert f'data-copy="{content.image.digest}"' in image

    # The SBOM and the platform manifests are listed under their artifact (grouped as
    # Harbor shows them), not as untagged artifacts of their own.
    sbom = row_of(html, content.artifact.digest)
    assert SBOM_TYPE in sbom
    assert "Referrer" in sbom
    assert size(content.artifact_size) in sbom
    attached = html.split(artifact_url(REPO, content.image.digest), 1)[1]
    attached = attached.split('<details class="attached">', 1)[1].split("</details>", 1)[0]
    assert artifact_url(REPO, content.artifact.digest) in attached
    for child in content.children:
        assert size(child.size) in row_of(html, child.digest)


@pytest.mark.parametrize(
    ("user", "may_push", "may_delete"),
    [
        ("admin", True, True),
        ("projectadmin", True, True),
        ("maintainer", True, True),
        ("developer", True, False),
        ("guest", False, False),
        ("limitedguest", False, False),
    ],
)
def test_change_forms_follow_the_role(
    registry: Registry, content: Content, user: str, may_push: bool, may_delete: bool
) -> None:
    html = browser_for(registry, user).get(PAGE).text
    assert ("<summary>Add tag</summary>" in html) is may_push
    assert ('aria-label="Remove tag v1"' in html) is may_delete
    assert ("Delete repository" in html) is may_delete
    assert ('class="danger small"' in html) is may_delete


def test_public_repository_for_anonymous_visitors(registry: Registry) -> None:
    push_image(admin_client(registry), "pub/tools/app", "latest")
    page = browser_for(registry).get("/repositories/pub/tools/app")
    assert page.status_code == 200
    assert f"docker pull {host_of(registry)}/pub/tools/app:latest" in page.text
    assert "Add tag" not in page.text
    assert "Delete" not in page.text
    assert 'method="post"' not in page.text


def test_private_repository_looks_missing_to_outsiders(
    registry: Registry, content: Content
) -> None:
    outsider = browser_for(registry, "outsider")
    existing = outsider.get(PAGE)
    missing = outsider.get("/repositories/acme/team/nothing")
    no_project = outsider.get("/repositories/nosuch/team/app")
    assert existing.status_code == missing.status_code == no_project.status_code == 404
    assert existing.text.replace(REPO, "X") == missing.text.replace("acme/team/nothing", "X")
    assert existing.text.replace(REPO, "X") == no_project.text.replace("nosuch/team/app", "X")
    assert content.image.digest[7:19] not in existing.text


def test_anonymous_visitors_are_sent_to_sign_in(registry: Registry, content: Content) -> None:
    for path in (PAGE, "/repositories/acme/team/nothing"):
        response = registry.as_caller({}).get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")


def test_empty_repository_teaches_how_to_push(registry: Registry) -> None:
    page = browser_for(registry, "developer").get("/repositories/acme/team/new")
    assert page.status_code == 200
    assert "No artifacts in acme/team/new" in page.text
    assert f"docker push {host_of(registry)}/acme/team/new:latest" in page.text
    assert "Push an image to create it" in page.text


def test_invalid_names_are_not_found(registry: Registry) -> None:
    page = browser_for(registry, "admin").get("/repositories/acme/Bad..Name")
    assert page.status_code == 404


def test_helm_chart_in_words_with_a_helm_pull_command(registry: Registry) -> None:
    client = admin_client(registry)
    name = "acme/charts/mychart"
    config, chart = b'{"name":"mychart","version":"0.1.0"}', b"chart tarball bytes"
    for blob in (config, chart):
        push_blob(client, name, blob)
    document = image_document(config, [chart], config_type=HELM_CONFIG, layer_type=HELM_LAYER)
    push_manifest(client, name, "0.1.0", Manifest(canonical(document), OCI_MANIFEST))
    html = browser_for(registry, "guest").get(f"/repositories/{name}").text
    assert ">Helm chart<" in html
    assert f"helm pull oci://{host_of(registry)}/{name} --version 0.1.0" in html


def test_type_words() -> None:
    words = artifacts.type_words
    assert words("image", "application/vnd.oci.image.config.v1+json") == "Image"
    assert words("index", None) == "Index"
    assert words("artifact", HELM_CONFIG) == "Helm chart"
    assert words("artifact", "application/vnd.dev.cosign.artifact.sig.v1+json") == (
        "Cosign signature"
    )
    assert words(None, "application/vnd.cncf.notary.signature") == "Notation signature"
    assert words(None, "application/spdx+json") == "SBOM (SPDX)"
    assert words("artifact", "application/x.unknown") == "application/x.unknown"
    assert words(None, None, "application/vnd.oci.image.index.v1+json") == "Index"
    assert words("artifact", None) == "Artifact"


# -- filter, sort, pages --------------------------------------------------------------


def test_tag_filter(registry: Registry, content: Content) -> None:
    browser = browser_for(registry, "guest")
    html = browser.get(PAGE, params={"tag": "mul"}).text
    assert artifact_url(REPO, content.index.digest) in html
    assert artifact_url(REPO, content.image.digest) not in html
    assert 'value="mul"' in html
    html = browser.get(PAGE, params={"tag": "nothing-like-it"}).text
    assert "No artifact has a tag containing “nothing-like-it”" in html


def test_sorting(registry: Registry, content: Content) -> None:
    browser = browser_for(registry, "guest")
    # Only the artifacts that stand on their own are sorted; the SBOM and the platform
    # manifests are listed under theirs.
    sizes = {
        content.index.digest: content.index_size,
        content.image.digest: content.image.size,
    }
    for sort, descending in (("-size", True), ("size", False)):
        html = browser.get(PAGE, params={"sort": sort}).text
        assert f'<option value="{sort}" selected>' in html
        shown = sorted(sizes, key=lambda d: html.index(artifact_url(REPO, d)))
        expected = sorted(sizes, key=lambda d: (-sizes[d] if descending else sizes[d], d))
        assert shown == expected
    assert browser.get(PAGE, params={"sort": "bogus"}).status_code == 200


def test_paging(registry: Registry, content: Content, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of the artifacts that stand on their own (the index and the image; the
    SBOM and platform manifests come with theirs)."""
    monkeypatch.setattr(repository, "PAGE_SIZE", 1)
    browser = browser_for(registry, "guest")
    first = browser.get(PAGE).text
    assert "1\u20131 of 2" in first
    assert f'href="{PAGE}?page=2" rel="next"' in first
    assert artifact_url(REPO, content.index.digest) in first
    last = browser.get(PAGE, params={"page": "2"}).text
    assert "2\u20132 of 2" in last
    assert f'href="{PAGE}?page=1" rel="prev"' in last
    assert artifact_url(REPO, content.index.digest) not in last
    assert artifact_url(REPO, content.image.digest) in last
    assert artifact_url(REPO, content.artifact.digest) in last  # attached to the image


# -- changes ----------------------------------------------------------------------------


def test_add_a_tag(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "developer")
    response = browser.post(
        f"{PAGE}/-/tags",
        {"digest": content.image.digest, "tag": "v2", "view": "sort=size&evil=1"},
    )
    assert response.status_code == 200
    assert str(response.url).endswith(f"{PAGE}?sort=size")
    assert f"Tag v2 now points at {short_digest(content.image.digest)}." in response.text
    assert "v2" in tags_of(admin_client(registry), REPO)
    assert ">v2<" in row_of(response.text, content.image.digest)


def test_bad_tag_is_refused_in_words(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "maintainer")
    response = browser.post(f"{PAGE}/-/tags", {"digest": content.image.digest, "tag": "-bad"})
    assert "Could not add tag -bad: invalid tag" in response.text
    assert 'class="flash error"' in response.text
    response = browser.post(f"{PAGE}/-/tags", {"digest": content.image.digest, "tag": ""})
    assert "Enter the tag to add." in response.text


def test_guest_cannot_add_a_tag(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "guest")
    assert "Add tag" not in browser.page
    response = browser.post(f"{PAGE}/-/tags", {"digest": content.image.digest, "tag": "v2"})
    assert "Could not add tag v2: you may not push in repository" in response.text
    assert "v2" not in tags_of(admin_client(registry), REPO)


def test_remove_a_tag(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "maintainer")
    response = browser.post(f"{PAGE}/-/tags/v1/delete")
    assert "Tag v1 removed; the artifact stays." in response.text
    assert tags_of(admin_client(registry), REPO) == ["multi"]
    assert artifact_url(REPO, content.image.digest) in response.text


def test_developer_cannot_remove_a_tag(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "developer")
    assert 'aria-label="Remove tag v1"' not in browser.page
    response = browser.post(f"{PAGE}/-/tags/v1/delete")
    assert "Could not remove tag v1: you may not delete in repository" in response.text
    assert "v1" in tags_of(admin_client(registry), REPO)


def test_delete_an_artifact(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "maintainer")
    response = browser.post(f"{PAGE}/-/artifacts/{content.artifact.digest}/delete")
    short = short_digest(content.artifact.digest)
    assert f"Artifact {short} and its tags deleted." in response.text
    assert artifact_url(REPO, content.artifact.digest) not in response.text
    gone = admin_client(registry).get(f"/v2/{REPO}/manifests/{content.artifact.digest}")
    assert gone.status_code == 404


def test_guest_cannot_delete_an_artifact(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "guest")
    response = browser.post(f"{PAGE}/-/artifacts/{content.image.digest}/delete")
    assert "you may not delete in repository" in response.text
    assert 'class="flash error"' in response.text
    assert artifact_url(REPO, content.image.digest) in response.text


def test_delete_the_repository(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "maintainer")
    response = browser.post(f"{PAGE}/-/delete", {"confirm": "acme/team"})
    assert "Type the repository name (acme/team/app) to confirm deleting it." in response.text
    response = browser.post(f"{PAGE}/-/delete", {"confirm": REPO}, follow=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/projects/acme"
    assert admin_client(registry).get(f"/v2/{REPO}/tags/list").status_code == 404
    assert "No artifacts in acme/team/app" in browser.get(PAGE).text


def test_guest_cannot_delete_the_repository(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "guest")
    assert "Delete repository" not in browser.page
    response = browser.post(f"{PAGE}/-/delete", {"confirm": REPO})
    assert "Could not delete repository acme/team/app: you may not delete" in response.text
    assert tags_of(admin_client(registry), REPO) == ["multi", "v1"]


def test_immutable_tags_are_refused_in_words(registry: Registry, content: Content) -> None:
    rule = admin_client(registry).post(
        "/api/v1/projects/acme/immutability-rules", json={"tag_pattern": "v*"}
    )
    assert rule.status_code == 201, rule.text
    browser = signed_in(registry, "maintainer")
    protected = "is protected by immutability rule"
    response = browser.post(f"{PAGE}/-/tags/v1/delete")
    assert "Could not remove tag v1:" in response.text
    assert protected in response.text
    response = browser.post(f"{PAGE}/-/tags", {"digest": content.index.digest, "tag": "v1"})
    assert "Could not add tag v1:" in response.text
    assert "cannot be moved" in response.text
    response = browser.post(f"{PAGE}/-/artifacts/{content.image.digest}/delete")
    assert protected in response.text
    response = browser.post(f"{PAGE}/-/delete", {"confirm": REPO})
    assert "repository acme/team/app cannot be deleted" in response.text
    assert tags_of(admin_client(registry), REPO) == ["multi", "v1"]


@pytest.fixture
def no_deletes(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url, registry={"delete_enabled": False}) as built:
        yield built


def test_disabled_deletes_are_said_in_words(no_deletes: Registry) -> None:
    pushed = push_content(admin_client(no_deletes), REPO)
    browser = signed_in(no_deletes, "maintainer")
    disabled = "deletes are disabled on this registry (registry.delete_enabled)"
    assert disabled in browser.post(f"{PAGE}/-/tags/v1/delete").text
    assert disabled in browser.post(f"{PAGE}/-/artifacts/{pushed.artifact.digest}/delete").text
    assert disabled in browser.post(f"{PAGE}/-/delete", {"confirm": REPO}).text
    assert tags_of(admin_client(no_deletes), REPO) == ["multi", "v1"]


def test_changes_need_the_session_csrf_token(registry: Registry, content: Content) -> None:
    browser = signed_in(registry, "maintainer")
    response = browser.client.post(f"{PAGE}/-/delete", data={"confirm": REPO, "csrf": "forged"})
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert tags_of(admin_client(registry), REPO) == ["multi", "v1"]


def test_names_with_many_slashes(registry: Registry) -> None:
    name = "acme/a/b/c/app"
    image = push_image(admin_client(registry), name, "v1")
    browser = browser_for(registry, "maintainer")
    assert browser.get(f"/repositories/{name}").status_code == 200
    assert browser.get(artifact_url(name, image.digest)).status_code == 200
    response = browser.post(f"/repositories/{name}/-/tags", {"digest": image.digest, "tag": "v2"})
    assert "Tag v2 now points at" in response.text
    response = browser.post(f"/repositories/{name}/-/tags/v1/delete")
    assert "Tag v1 removed" in response.text
    assert tags_of(admin_client(registry), name) == ["v2"]
