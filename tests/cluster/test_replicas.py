"""Three `portside serve` replicas on one PostgreSQL database and one storage directory,
behind nginx (docs/deploy/nginx.conf), behave as one registry: what one replica
acknowledged, every other serves; an upload continues on any replica; tokens and UI
sessions from one are accepted by all; jobs run once; a disabled user or a removed
member is refused by every replica within `auth.cache_seconds`; a replica killed during
pushes loses nothing it acknowledged.

PostgreSQL-only (see conftest.py). The skopeo test is marked `clients`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from portside.jobs.store import Jobs
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.metadata.engine import make_engine
from tests.clients.conftest import containers_config
from tests.clients.images import Layout, assert_layout_has_image, build_image, write_layout
from tests.clients.tooling import Skopeo, require_binary
from tests.cluster.conftest import ADMIN_PASSWORD, CACHE_SECONDS, Cluster
from tests.cluster.helpers import (
    ADMIN,
    PASSWORD,
    assert_fsck_clean,
    assert_pullable,
    auth,
    direct,
    push,
    push_while_killing,
)
from tests.durability.server import (
    OCI_MANIFEST,
    ServerProcess,
    finish_upload,
    patch_chunk,
    sha256,
    start_upload,
)

# Generous: a loaded 2-core machine runs three servers, nginx and PostgreSQL.
SETTLE = CACHE_SECONDS + 15.0


@pytest.fixture(scope="module")
def cluster(cluster: Cluster) -> Cluster:
    """The module's cluster with an admin (from auth.initial_admin_password, created by
    the first replica) and a project `team`."""
    with cluster.client(headers=ADMIN) as admin:
        created = admin.post("/api/v1/projects", json={"name": "team"})
        assert created.status_code == 201, created.text
    return cluster


def test_push_through_one_replica_pull_through_every_other(cluster: Cluster) -> None:
    first, *others = cluster.replicas
    with direct(first, ADMIN) as client:
        pushed = push(client, "team/one", "v1", "pushed through replica 0")
    for replica in others:
        with direct(replica, ADMIN) as client:
            assert_pullable(client, pushed)
            assert "v1" in client.get("/v2/team/one/tags/list").json()["tags"]
    with cluster.client(headers=ADMIN) as client:
        for _ in range(len(cluster.replicas)):  # round-robin: each replica answers once
            assert_pullable(client, pushed)


def test_chunked_upload_whose_requests_hit_different_replicas(cluster: Cluster) -> None:
    a, b, c = cluster.replicas
    data = bytes(range(256)) * 1024  # 256 KiB in three chunks
    chunks = [data[:100_000], data[100_000:200_000], data[200_000:]]
    with direct(a, ADMIN) as ca, direct(b, ADMIN) as cb, direct(c, ADMIN) as cc:
        location = start_upload(ca, "team/chunked")
        path = re.sub(r"^https?://[^/]+", "", location)  # the same upload, on another replica
        first = patch_chunk(cb, path, chunks[0], 0)
        assert first.status_code == 202, first.text
        second = patch_chunk(cc, path, chunks[1], len(chunks[0]))
        assert second.status_code == 202, second.text
        status = ca.get(path)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{199_999}"
        done = finish_upload(cb, path, sha256(data), chunks[2])
        assert done.status_code == 201, done.text
        for client in (ca, cb, cc):
            blob = client.get(f"/v2/team/chunked/blobs/{sha256(data)}")
            assert blob.status_code == 200
            assert blob.content == data


def test_a_token_from_one_replica_is_accepted_by_every_other(cluster: Cluster) -> None:
    with direct(cluster.replicas[0], ADMIN) as client:
        pushed = push(client, "team/tokens", "v1", "token test")
        issued = client.get(
            "/auth/token",
            params={"service": "portside", "scope": "repository:team/tokens:pull,push"},
        )
        assert issued.status_code == 200, issued.text
    bearer = {"authorization": f"Bearer {issued.json()['token']}"}
    for n, replica in enumerate(cluster.replicas):
        with direct(replica, bearer) as client:
            assert_pullable(client, pushed)
            # A push with it too (writes re-check the holder's roles on that replica).
            push(client, "team/tokens", f"from-{n}", f"token push {n}")


def test_ui_session_from_one_replica_works_on_the_others(cluster: Cluster) -> None:
    a, b, c = cluster.replicas
    with httpx.Client(timeout=60) as browser:  # one cookie jar: 127.0.0.1, any port
        page = browser.get(f"{a.url}/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert csrf, page.text
        signed_in = browser.post(
            f"{a.url}/login",
            data={"csrf": csrf.group(1), "username": "admin", "password": ADMIN_PASSWORD},
        )
        assert signed_in.status_code in (200, 303), signed_in.text
        assert browser.cookies.get("portside_session")
        for replica in (b, c):
            profile = browser.get(f"{replica.url}/profile")
            assert profile.status_code == 200, profile.text
            assert ">admin" in profile.text
        # A change posted to another replica, with the CSRF token of the session.
        page = browser.get(f"{b.url}/projects")
        token = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert token, page.text
        made = browser.post(
            f"{c.url}/projects",
            data={"csrf": token.group(1), "name": "fromui", "visibility": "private"},
            follow_redirects=True,
        )
        assert made.status_code == 200, made.text
    with cluster.client(headers=ADMIN) as admin:
        assert admin.get("/api/v1/projects/fromui").status_code == 200


def test_jobs_and_schedules_run_once_across_replicas(cluster: Cluster) -> None:
    """Every replica runs a job worker (jobs.workers: 1): each queued job is claimed by
    exactly one of them, and a due schedule queues one run, not one per replica."""
    db = Database(make_engine(cluster.database_url))
    jobs = Jobs(db)
    try:
        ids = [
            jobs.enqueue(
                "probe", {"seconds": 0.2}, project=None, created_by="test", exclusive=False
            )
            for _ in range(12)
        ]
        rows = _wait_for_jobs(db, s.jobs.c.id.in_(ids), len(ids))
        assert [r.status for r in rows] == ["succeeded"] * len(ids), rows
        # Claimed once: one attempt each, and one run in each job's log.
        assert all(r.attempts == 1 for r in rows), [(r.id, r.attempts) for r in rows]
        with db.read() as conn:
            for job_id in ids:
                lines = (
                    conn.execute(select(s.job_log.c.message).where(s.job_log.c.job_id == job_id))
                    .scalars()
                    .all()
                )
                assert sum("waited" in line for line in lines) == 1, (job_id, lines)
        # A due schedule, seen by the three workers: one run.
        with db.write() as conn:
            conn.execute(
                s.schedules.insert().values(
                    name="probe-once",
                    kind="probe",
                    project=None,
                    cron="0 0 1 1 *",  # the next slot is months away
                    params=json.dumps({"seconds": 0}),
                    enabled=True,
                    next_run_at=utcnow(),
                    created_by="test",
                    updated_at=utcnow(),
                )
            )
        _wait_for_jobs(db, s.jobs.c.schedule == "probe-once", 1)
        time.sleep(3)  # every worker has looked at the schedule several times by now
        fired = _wait_for_jobs(db, s.jobs.c.schedule == "probe-once", 1)
        assert [r.status for r in fired] == ["succeeded"], fired
    finally:
        db.engine.dispose()


def _wait_for_jobs(db: Database, where: Any, count: int) -> list[Any]:
    """The jobs matching `where` once `count` of them have finished (or after 120 s)."""
    deadline = time.monotonic() + 120
    while True:
        with db.read() as conn:
            rows = list(conn.execute(select(s.jobs).where(where).order_by(s.jobs.c.id)).all())
        finished = [r for r in rows if r.status in ("succeeded", "failed", "stopped")]
        if len(finished) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def _may_pull(replica: ServerProcess, headers: dict[str, str], repo: str) -> int:
    with direct(replica, headers) as client:
        return client.get(f"/v2/{repo}/manifests/v1", headers={"accept": OCI_MANIFEST}).status_code


def _refused_everywhere_within_bound(
    cluster: Cluster, headers: dict[str, str], repo: str, changed_at: float
) -> None:
    pending = set(range(len(cluster.replicas)))
    deadline = changed_at + SETTLE
    while pending and time.monotonic() < deadline:
        for n in sorted(pending):
            if _may_pull(cluster.replicas[n], headers, repo) in (401, 403):
                pending.discard(n)
        time.sleep(0.2)
    assert not pending, f"replicas {sorted(pending)} still served after {SETTLE} s"


def test_a_disabled_user_is_refused_by_every_replica_within_the_cache_bound(
    cluster: Cluster,
) -> None:
    with cluster.client(headers=ADMIN) as admin:
        made = admin.post("/api/v1/users", json={"username": "leaver", "password": PASSWORD})
        assert made.status_code == 201, made.text
        member = admin.put("/api/v1/projects/team/members/leaver", json={"role": "developer"})
        assert member.status_code == 200, member.text
        push(admin, "team/staleness", "v1", "staleness")
        leaver = auth("leaver")
        # Every replica has verified (and so cached) the password and the role.
        for replica in cluster.replicas:
            assert _may_pull(replica, leaver, "team/staleness") == 200
        disabled = admin.patch("/api/v1/users/leaver", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        _refused_everywhere_within_bound(cluster, leaver, "team/staleness", time.monotonic())
        # Nor does a disabled user get a token from any replica (401, or 429 once the
        # failures counted in the database reach the login throttle).
        for replica in cluster.replicas:
            with direct(replica, leaver) as client:
                refused = client.get("/auth/token", params={"service": "portside"})
                assert refused.status_code in (401, 429), refused.text


def test_a_removed_member_is_refused_by_every_replica_within_the_cache_bound(
    cluster: Cluster,
) -> None:
    with cluster.client(headers=ADMIN) as admin:
        made = admin.post("/api/v1/users", json={"username": "mover", "password": PASSWORD})
        assert made.status_code == 201, made.text
        assert (
            admin.put("/api/v1/projects/team/members/mover", json={"role": "developer"}).status_code
            == 200
        )
        push(admin, "team/membership", "v1", "membership")
        mover = auth("mover")
        for replica in cluster.replicas:
            assert _may_pull(replica, mover, "team/membership") == 200
        removed = admin.delete("/api/v1/projects/team/members/mover")
        assert removed.status_code == 204, removed.text
        _refused_everywhere_within_bound(cluster, mover, "team/membership", time.monotonic())


def test_a_killed_replica_loses_nothing_it_acknowledged(cluster: Cluster) -> None:
    """Pushers write through every replica while one is SIGKILLed: every manifest PUT
    that got 201 is pullable afterwards through the survivors."""
    victim = cluster.replicas[-1]
    acknowledged = push_while_killing(cluster, victim, "team/crash")
    try:
        assert acknowledged
        survivors = cluster.replicas[:-1]
        for n, pushed in enumerate(acknowledged):
            with direct(survivors[n % len(survivors)], ADMIN) as client:
                assert_pullable(client, pushed)
    finally:
        victim.start(victim.port)  # later tests (if any) get three replicas again
    assert not cluster.internal_errors()
    # And the metadata and the shared storage agree (what the killed replica left half
    # done is an upload, which fsck does not count as a problem).
    assert_fsck_clean(cluster)


def test_no_replica_logged_an_internal_error(cluster: Cluster) -> None:
    assert not cluster.internal_errors(), cluster.internal_errors()


@pytest.mark.clients
def test_skopeo_pushes_through_nginx_and_pulls_from_each_replica(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A real client: skopeo pushes through the load balancer (its blob uploads spread
    over the replicas round-robin), then pulls from each replica addressed directly."""
    (tmp_path / "conf").mkdir()
    env = containers_config(tmp_path / "conf", insecure=None)
    skopeo = Skopeo(require_binary("skopeo"), env)
    image = build_image("cluster", big_layer_kib=512)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    creds = f"admin:{ADMIN_PASSWORD}"
    host = cluster.url.removeprefix("http://")
    skopeo.push_layout(layout, "v1", f"{host}/team/skopeo:v1", "--dest-creds", creds)
    for n, replica in enumerate(cluster.replicas):
        pulled = skopeo.pull_layout(
            f"{replica.url.removeprefix('http://')}/team/skopeo:v1",
            tmp_path / f"pulled-{n}",
            "v1",
            "--src-creds",
            creds,
        )
        assert_layout_has_image(Layout(pulled), image, "v1")
