"""One run of one rule: open the endpoint's client, plan, copy, and return the summary
that becomes the job's result (and the `replication.completed` event's data)."""

from __future__ import annotations

from typing import Any

from portside.endpoints.secrets import SecretUnreadable
from portside.endpoints.store import EndpointStore
from portside.events import outbox
from portside.remote import RemoteError
from portside.replication.engine import Artifact, Reporter, Services, actor_of
from portside.replication.pulling import Puller
from portside.replication.pushing import Pusher
from portside.replication.rules import Rule
from portside.replication.runs import Runs


class RunFailed(Exception):
    """The run could not start (endpoint unreadable or unreachable for planning)."""


def replicate(
    services: Services,
    endpoints: EndpointStore,
    rule: Rule,
    *,
    job_id: int,
    reporter: Reporter,
    artifacts: list[Artifact] | None = None,
    trigger: str = "manual",
) -> dict[str, Any]:
    """Run `rule` (for an event run, only `artifacts`); raises RunFailed when nothing
    could be planned, otherwise returns the summary (failed artifacts included)."""
    endpoint = endpoints.by_id(rule.endpoint_id)
    if endpoint is None:
        raise RunFailed(f"the endpoint of {rule.describe()} is gone")
    try:
        client = endpoints.client(endpoint)
    except (SecretUnreadable, ValueError) as error:
        raise RunFailed(f"endpoint {endpoint.name!r}: {error}") from None
    runs = Runs(services.db)
    with client:
        # One look first: an endpoint that cannot be reached or refuses us fails the run
        # with that reason, instead of every artifact failing the same way after retries.
        ping = client.ping()
        if not ping.ok:
            raise RunFailed(f"endpoint {endpoint.name!r}: {ping.message}")
        worker: Pusher | Puller
        if rule.direction == "push":
            worker = Pusher(
                services,
                rule=rule,
                client=client,
                endpoint_kind=endpoint.kind,
                runs=runs,
                job_id=job_id,
                reporter=reporter,
            )
        else:
            worker = Puller(
                services, rule=rule, client=client, runs=runs, job_id=job_id, reporter=reporter
            )
        try:
            planned = worker.plan() if artifacts is None else artifacts
        except RemoteError as error:
            raise RunFailed(f"planning against {endpoint.name!r} failed: {error}") from None
        reporter.log(f"{rule.describe()}: {len(planned)} artifacts planned ({trigger})")
        tally = worker.run(planned)
        if isinstance(worker, Pusher) and artifacts is None and rule.copy_deletions:
            worker.sweep()  # event runs name their deletions; a full run looks
    summary = tally.summary() | {"trigger": trigger, "job": job_id}
    reporter.log(
        f"done: {tally.copied} copied, {tally.skipped} skipped, {tally.deleted} deleted, "
        f"{tally.failed} failed; {tally.blobs} blobs, {tally.bytes} bytes"
    )
    with services.db.write() as conn:
        outbox.emit(
            conn,
            outbox.REPLICATION_COMPLETED,
            actor_of(rule),
            resource=f"replication/rules/{rule.name}",
            data=summary,
        )
    return summary
