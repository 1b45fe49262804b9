"""Storage usage (content.usage): the SQL against a plain-Python reading of the
definitions on random link patterns, and the numbers for content pushed through /v2."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.content.usage import ProjectUsage, UsageReports, project_used
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.api.helpers import make_image, push_blob, push_manifest, sha256

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOSITORIES = ["a/one", "a/two", "a/three/deep", "b/one", "b/two", "c/one", "solo"]


@dataclass
class World:
    """Random content written straight into the tables, and the answer by definition."""

    projects_with_rows: dict[str, int | None]
    blob_sizes: dict[str, int]
    links: dict[str, set[str]]  # repository -> digests
    manifests: dict[str, list[int]] = field(default_factory=dict)  # repository -> sizes

    @staticmethod
    def project(repository: str) -> str:
        return repository.split("/", 1)[0]

    def repositories_of(self, project: str) -> list[str]:
        return [r for r in REPOSITORIES if self.project(r) == project]

    def linked_by(self, repositories: list[str]) -> set[str]:
        return set().union(*(self.links[r] for r in repositories)) if repositories else set()

    def manifest_bytes(self, repositories: list[str]) -> int:
        return sum(sum(self.manifests.get(r, [])) for r in repositories)

    def expected_project(self, project: str) -> tuple[int, int, int, int]:
        mine = self.repositories_of(project)
        others = [r for r in REPOSITORIES if r not in mine]
        linked = self.linked_by(mine)
        unique = linked - self.linked_by(others)
        in_manifests = self.manifest_bytes(mine)
        holding = [r for r in mine if self.links[r] or self.manifests.get(r)]
        return (
            sum(self.blob_sizes[d] for d in linked) + in_manifests,
            sum(self.blob_sizes[d] for d in unique) + in_manifests,
            in_manifests,
            len(holding),
        )

    def expected_repository(self, repository: str) -> tuple[int, int]:
        others = [r for r in REPOSITORIES if r != repository]
        unique = self.links[repository] - self.linked_by(others)
        in_manifests = self.manifest_bytes([repository])
        return (
            sum(self.blob_sizes[d] for d in self.links[repository]) + in_manifests,
            sum(self.blob_sizes[d] for d in unique) + in_manifests,
        )


def build_world(app: PortsideApp, seed: int) -> World:
    rng = random.Random(seed)
    now = utcnow()
    world = World(
        projects_with_rows={"a": 10_000, "b": None, "c": 5, "empty": 1_000},
        blob_sizes={sha256(f"{seed}-{i}".encode()): rng.randint(0, 5_000) for i in range(40)},
        links={r: set() for r in REPOSITORIES},
    )
    for digest in world.blob_sizes:
        # Most blobs in one or two repositories, some in many, some in none (unreferenced).
        count = rng.choice([0, 1, 1, 1, 2, 2, 3, len(REPOSITORIES)])
        for repository in rng.sample(REPOSITORIES, count):
            world.links[repository].add(digest)
    for repository in REPOSITORIES:
        world.manifests[repository] = [rng.randint(100, 900) for _ in range(rng.randint(0, 3))]
    with app.ctx.db.write() as conn:
        for name, quota in world.projects_with_rows.items():
            conn.execute(
                s.projects.insert().values(
                    name=name, public=False, quota_bytes=quota, created_at=now
                )
            )
        ids = {}
        for name in REPOSITORIES:
            ids[name] = conn.execute(
                s.repositories.insert()
                .values(name=name, project=World.project(name), created_at=now)
                .returning(s.repositories.c.id)
            ).scalar_one()
        for digest, size in world.blob_sizes.items():
            conn.execute(s.blobs.insert().values(digest=digest, size=size, created_at=now))
        for name, digests in world.links.items():
            for digest in digests:
                conn.execute(
                    s.repository_blobs.insert().values(
                        repository_id=ids[name], digest=digest, linked_at=now
                    )
                )
        for name, sizes in world.manifests.items():
            for number, size in enumerate(sizes):
                content = bytes([number]) * size
                conn.execute(
                    s.manifests.insert().values(
                        repository_id=ids[name],
                        digest=sha256(content + name.encode()),
                        media_type=OCI_MANIFEST,
                        size=size,
                        content=content,
                        pushed_at=now,
                    )
                )
    return world


def numbers(usage: ProjectUsage) -> tuple[int, int, int, int]:
    return (usage.used, usage.unique, usage.manifest_bytes, usage.repository_count)


@pytest.mark.parametrize("seed", range(6))
def test_usage_matches_the_definitions(app: PortsideApp, seed: int) -> None:
    world = build_world(app, seed)
    reports = UsageReports(app.ctx.db)
    registry = reports.registry()
    by_name = {p.name: p for p in registry.projects}
    # Projects with a row, and projects that only have repositories (`solo`).
    assert sorted(by_name) == ["a", "b", "c", "empty", "solo"]
    for name, listed in by_name.items():
        expected = world.expected_project(name)
        single = reports.project(name, repositories=True)
        assert numbers(single) == expected, name
        assert numbers(listed) == expected, name
        assert single.quota == listed.quota == world.projects_with_rows.get(name)
        assert single.shared == single.used - single.unique >= 0
        with app.ctx.db.read() as conn:
            assert project_used(conn, name) == expected[0]
        assert single.repositories is not None
        holding = [r for r in world.repositories_of(name) if world.links[r] or world.manifests[r]]
        assert [r.name for r in single.repositories] == sorted(holding)
        for repository in single.repositories:
            assert (repository.used, repository.unique) == world.expected_repository(
                repository.name
            )
            assert repository.manifest_bytes == world.manifest_bytes([repository.name])
    assert reports.used(["a", "c", "nothing"]) == {
        "a": world.expected_project("a")[0],
        "c": world.expected_project("c")[0],
        "nothing": 0,
    }
    linked = world.linked_by(REPOSITORIES)
    assert registry.blob_bytes == sum(world.blob_sizes.values())
    assert registry.unreferenced_bytes == sum(
        size for digest, size in world.blob_sizes.items() if digest not in linked
    )
    assert registry.manifest_bytes == world.manifest_bytes(REPOSITORIES)
    assert registry.stored == registry.blob_bytes + registry.manifest_bytes
    # Unique bytes never add up to more than is stored; used bytes may (sharing).
    assert sum(p.unique for p in registry.projects) <= registry.stored
    assert registry.projects_used == sum(p.used for p in registry.projects)


def test_empty_registry(app: PortsideApp) -> None:
    reports = UsageReports(app.ctx.db)
    registry = reports.registry()
    assert (registry.projects, registry.stored, registry.unreferenced_bytes) == ((), 0, 0)
    nothing = reports.project("nothing", repositories=True)
    assert numbers(nothing) == (0, 0, 0, 0)
    assert nothing.repositories == ()
    assert nothing.quota is None


def test_pushed_content(app: PortsideApp, client: TestClient) -> None:
    """Each blob once per project; a layer in two projects is shared; manifests count."""
    base = b"base layer shared by everyone" * 40
    app_layer = b"the app's own layer" * 30
    config = b'{"architecture":"amd64","os":"linux"}'
    one = make_image(client, "team/app", config=config, layers=[base, app_layer])
    push_manifest(client, "team/app", "v1", one)
    two = make_image(client, "team/worker", config=config, layers=[base])
    push_manifest(client, "team/worker", "v1", two)
    push_blob(client, "other/tool", base)

    team = UsageReports(app.ctx.db).project("team", repositories=True)
    manifests = len(one.body) + len(two.body)
    assert team.used == len(base) + len(app_layer) + len(config) + manifests
    assert team.shared == len(base)  # other/tool links it too
    assert team.unique == len(app_layer) + len(config) + manifests
    assert team.repository_count == 2
    assert team.repositories is not None
    app_usage, worker_usage = team.repositories
    assert app_usage.name == "team/app"
    assert app_usage.used == len(base) + len(app_layer) + len(config) + len(one.body)
    assert app_usage.unique == len(app_layer) + len(one.body)
    assert worker_usage.used == len(base) + len(config) + len(two.body)
    assert worker_usage.unique == len(two.body)
    # Deleting a repository's link makes the blob unique to the rest.
    assert client.delete(f"/v2/other/tool/blobs/{sha256(base)}").status_code == 202
    assert UsageReports(app.ctx.db).project("team").shared == 0
    # A project whose repositories hold nothing (and that has no row) is not listed.
    listed = {p.name: p.used for p in UsageReports(app.ctx.db).registry().projects}
    assert listed == {"team": team.used}
