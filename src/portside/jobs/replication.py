"""The `replication` job and what queues it: manual runs, the cron schedules of
scheduled rules, and the outbox consumer that turns pushes and deletions into runs of
event-triggered push rules.

Event runs: the `replication` consumer reads `artifact.pushed` and `artifact.deleted`
events with a cursor (events.outbox), and in the same transaction queues, per rule, one
run for the artifacts of the batch that the rule selects (repository and tag patterns;
a manifest pushed by digest with a subject, such as a signature, brings its subject
along with its referrers; deletions only with `copy_deletions`). So no push is missed or
replicated twice by the queueing; the copying itself skips what the destination has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, select

from portside.events import outbox
from portside.events.outbox import Actor, Consumer, Event
from portside.jobs.context import JobContext, JobFailed
from portside.jobs.kinds import ParamsError
from portside.jobs.schedules import Schedules
from portside.jobs.store import Jobs
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.replication.rules import CONSUMER, TRIGGERS, Rule, RuleStore
from portside.replication.runs import Runs

log = structlog.get_logger(__name__)
KIND = "replication"
MAX_EVENT_ARTIFACTS = 1000  # per queued run; more events make more runs


def params(raw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(raw) - {"rule", "trigger", "artifacts"})
    if unknown:
        raise ParamsError(f"unknown parameter {unknown[0]!r} (allowed: artifacts, rule, trigger)")
    rule = raw.get("rule")
    if isinstance(rule, bool) or not isinstance(rule, int) or rule < 1:
        raise ParamsError("rule must be a rule id")
    trigger = raw.get("trigger", "manual")
    if trigger not in TRIGGERS:
        raise ParamsError(f"trigger must be one of {', '.join(TRIGGERS)}")
    artifacts = raw.get("artifacts")
    if artifacts is not None and not isinstance(artifacts, list):
        raise ParamsError("artifacts must be a list")
    return {"rule": rule, "trigger": trigger} | ({"artifacts": artifacts} if artifacts else {})


def run_replication(job: JobContext) -> dict[str, Any]:
    # The copying code (HTTP client, encryption) loads with the first run, not with
    # every worker that only queues event runs.
    from portside.endpoints.store import EndpointStore
    from portside.replication.engine import Artifact, Services
    from portside.replication.run import RunFailed, replicate

    ctx = job.services
    rule = RuleStore(ctx.db).by_id(int(job.params["rule"]))
    if rule is None:
        raise JobFailed(f"replication rule {job.params['rule']} no longer exists")
    trigger = str(job.params.get("trigger", "manual"))
    runs = Runs(ctx.db)
    runs.begin(job.job_id, rule.id, trigger)
    if trigger == "scheduled":
        earlier = runs.other_active(job.job_id, rule.id)
        if earlier is not None:  # a slow run outlasting its cron interval: no pile-up
            job.log(f"run {earlier} of this rule is still going; this slot is skipped")
            return {"rule": rule.name, "skipped": f"run {earlier} still going"}
    artifacts = None
    if "artifacts" in job.params:
        artifacts = [
            Artifact(
                str(a["repository"]),
                str(a["digest"]),
                tuple(a.get("tags") or ()),
                bool(a.get("deleted")),
            )
            for a in job.params["artifacts"]
        ]
    services = Services(ctx.db, ctx.storage, ctx.blobs, ctx.uploads, ctx.manifests)
    try:
        summary = replicate(
            services,
            EndpointStore(ctx.db, ctx.settings),
            rule,
            job_id=job.job_id,
            reporter=job,
            artifacts=artifacts,
            trigger=trigger,
        )
    except RunFailed as error:
        raise JobFailed(str(error)) from None
    failed = int(summary.get("failed", 0))
    if failed:  # as Harbor: a run that left artifacts behind failed (a rerun finishes it)
        done = sum(int(summary.get(k, 0)) for k in ("copied", "skipped", "deleted"))
        raise JobFailed(
            f"{failed} of {failed + done} artifacts failed (see the run's failed items); "
            "running the rule again copies only what is still missing",
            result=summary,
        )
    return summary


def queue_run(db: Database, rule: Rule, *, actor: Actor, trigger: str = "manual") -> int:
    """Queue a run of `rule` now; its id (the job's)."""
    job_id = Jobs(db).enqueue(
        KIND,
        {"rule": rule.id, "trigger": trigger},
        created_by=actor.name,
        exclusive=False,  # runs of different rules go side by side
        actor=actor,
    )
    Runs(db).begin(job_id, rule.id, trigger)
    return job_id


def sync_schedule(db: Database, rule: Rule | None, *, actor: Actor, name: str) -> None:
    """Keep the job schedule `name` of a rule in step with it: present for an enabled
    scheduled rule, absent otherwise (`rule` None: the rule was deleted)."""
    schedules = Schedules(db)
    if rule is not None and rule.trigger == "scheduled" and rule.enabled and rule.cron:
        schedules.put(
            name,
            kind=KIND,
            cron=rule.cron,
            params={"rule": rule.id, "trigger": "scheduled"},
            created_by=actor.name,
            actor=actor,
        )
    elif schedules.get(name) is not None:
        schedules.delete(name, actor=actor)


# -- event runs --------------------------------------------------------------------------


def queue_event_runs(db: Database) -> int:
    """Catch up the `replication` consumer: queue runs for the events since its cursor.
    Returns how many events were read (0 when no event rule exists: nothing is read)."""
    with db.read() as conn:
        exists = conn.execute(
            select(s.replication_rules.c.id)
            .where(s.replication_rules.c.trigger == "event", s.replication_rules.c.enabled)
            .limit(1)
        ).first()
    if exists is None:
        return 0
    jobs = Jobs(db)

    def handle(conn: Connection, events: Sequence[Event]) -> None:
        _queue_for_events(conn, jobs, events)

    return Consumer(db, CONSUMER, start_at_end=True).catch_up(handle)


def _queue_for_events(conn: Connection, jobs: Jobs, events: Sequence[Event]) -> None:
    wanted = [e for e in events if e.type in (outbox.ARTIFACT_PUSHED, outbox.ARTIFACT_DELETED)]
    if not wanted:
        return
    for rule in RuleStore.event_rules(conn):
        repositories, tags = rule.repository_pattern(), rule.tag_pattern()
        artifacts: dict[tuple[str, str, bool], set[str]] = {}
        for event in wanted:
            repository, digest = event.repository, event.data.get("digest")
            if not repository or not isinstance(digest, str):
                continue
            if not repositories.matches(repository):
                continue
            if event.type == outbox.ARTIFACT_DELETED:
                if rule.copy_deletions:
                    artifacts.setdefault((repository, digest, True), set())
                continue
            tag = event.data.get("tag")
            if isinstance(tag, str):
                if tags.matches(tag):
                    artifacts.setdefault((repository, digest, False), set()).add(tag)
                continue
            subject = _subject_of(conn, repository, digest)
            if subject is not None:  # a referrer: its subject comes with its referrers
                artifacts.setdefault((repository, subject, False), set())
        if not artifacts:
            continue
        listed = [
            {"repository": r, "digest": d, "tags": sorted(t), "deleted": deleted}
            for (r, d, deleted), t in artifacts.items()
        ]
        for start in range(0, len(listed), MAX_EVENT_ARTIFACTS):
            job_id = jobs.enqueue_in(
                conn,
                KIND,
                {
                    "rule": rule.id,
                    "trigger": "event",
                    "artifacts": listed[start : start + MAX_EVENT_ARTIFACTS],
                },
                project=None,
                created_by=f"replication:{rule.name}",
                exclusive=False,
            )
            conn.execute(
                s.replication_runs.insert().values(
                    job_id=job_id, rule_id=rule.id, trigger="event", created_at=utcnow()
                )
            )
            log.info("replication.event_run_queued", rule=rule.name, job=job_id)


def _subject_of(conn: Connection, repository: str, digest: str) -> str | None:
    m, r = s.manifests, s.repositories
    found = conn.execute(
        select(m.c.subject_digest)
        .join(r, r.c.id == m.c.repository_id)
        .where(r.c.name == repository, m.c.digest == digest)
    ).scalar_one_or_none()
    return None if found is None else str(found)
