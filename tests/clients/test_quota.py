"""A real client against a project storage quota: skopeo pushes an image that exactly
fills the quota, then a second image, which is refused with the quota message and leaves
nothing behind (no blob, link, upload or file).

The module starts its own (open) Portside on a fresh database; the project and its quota
are made through the services the CLI uses, as an operator would with
`portside project create tight --quota ...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portside.auth.projects import Projects
from portside.content.usage import UsageReports
from portside.metadata import schema as s
from portside.metadata.db import Database
from tests.durability.server import ServerProcess

from .conftest import containers_config, own_portside
from .images import Image, assert_registry_has_exact_image, build_image, write_layout
from .tooling import CommandError, RegistryHTTP, Skopeo, require_binary

pytestmark = pytest.mark.clients


@dataclass
class QuotaRegistry:
    server: ServerProcess
    db: Database

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def blob_rows(self, digests: list[str]) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(s.blobs).where(s.blobs.c.digest.in_(digests))
                ).scalar_one()
            )

    def upload_rows(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(s.uploads)).scalar_one())


@pytest.fixture(scope="module")
def quota_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuotaRegistry]:
    root = tmp_path_factory.mktemp("quota-server")
    with own_portside(request, root, "quota") as (process, db):
        yield QuotaRegistry(process, db)


def image_bytes(image: Image) -> int:
    return sum(len(b) for b in image.blobs().values()) + len(image.manifest)


def test_skopeo_push_over_quota_is_refused_and_leaves_nothing(
    quota_registry: QuotaRegistry, tmp_path: Path
) -> None:
    registry = quota_registry
    first, second = build_image("quota first"), build_image("quota second")
    Projects(registry.db).create("tight", quota_bytes=image_bytes(first), creator="tests")
    (tmp_path / "conf").mkdir()
    skopeo = Skopeo(
        require_binary("skopeo"), containers_config(tmp_path / "conf", insecure=registry.host)
    )
    layout = write_layout(tmp_path / "layout", {"first": first, "second": second})

    # Exactly filling the quota is allowed.
    skopeo.push_layout(layout, "first", f"{registry.host}/tight/app:first")
    http = RegistryHTTP(registry.server.url)
    try:
        assert_registry_has_exact_image(http, "tight/app", "first", first)
        assert UsageReports(registry.db).project("tight").used == image_bytes(first)

        with pytest.raises(CommandError) as refused:
            skopeo.push_layout(layout, "second", f"{registry.host}/tight/app:second")
        message = str(refused.value)
        assert "denied: quota exceeded: project 'tight' would use" in message, message
        assert http.manifest_status("tight/app", "second") == 404
        # The first image is intact, and nothing of the second is anywhere.
        assert_registry_has_exact_image(http, "tight/app", "first", first)
    finally:
        http.close()
    assert UsageReports(registry.db).project("tight").used == image_bytes(first)
    assert registry.blob_rows(list(second.blobs())) == 0
    assert registry.upload_rows() == 0
    storage = registry.server.data_dir / "storage" / "v1"
    for digest in second.blobs():
        algorithm, hex_digest = digest.split(":")
        assert not (storage / "blobs" / algorithm / hex_digest[:2] / hex_digest).exists()
    uploads = storage / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
