"""The webhook dispatcher the job workers run in a thread of their own (a long GC job
does not hold webhooks up): queue deliveries for new events, then send what is due.

Queuing reads the outbox with the `webhooks` consumer, whose effect (the delivery rows)
commits with the cursor's advance. Sending claims deliveries with a lease, so any
number of workers share the work and a killed worker's delivery is retried by another
once its lease expires. An idle dispatcher only reads.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy import Connection, func, select

from portside.config import Settings
from portside.egress import EgressPolicy, policy_from
from portside.events.outbox import Consumer, Event
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.webhooks.deliveries import Deliveries, Delivery, Retry, queue
from portside.webhooks.payloads import TEST_EVENT, render
from portside.webhooks.policies import CONSUMER, PolicyStore
from portside.webhooks.sender import attempt

log = structlog.get_logger(__name__)


def egress_policy(settings: Settings) -> EgressPolicy:
    options = settings.webhooks
    return policy_from(
        allow_private=options.allow_private_targets,
        allowed_networks=options.allowed_networks,
        timeout_seconds=options.timeout_seconds,
        max_redirects=options.max_redirects,
    )


def retry_of(settings: Settings) -> Retry:
    options = settings.webhooks
    return Retry(options.max_attempts, options.retry_base_seconds, options.retry_max_seconds)


def lease_for(settings: Settings) -> timedelta:
    """Longer than an attempt can take: connect, write and read may each take the
    timeout, on every hop of the redirects; plus room for the database."""
    options = settings.webhooks
    return timedelta(seconds=3 * options.timeout_seconds * (options.max_redirects + 1) + 10)


class Dispatcher:
    def __init__(self, db: Database, settings: Settings, worker: str) -> None:
        self.db = db
        self.worker = worker
        self.public_url = settings.public_url
        self.poll_seconds = settings.webhooks.poll_seconds
        self.egress = egress_policy(settings)
        self.lease = lease_for(settings)
        self.policies = PolicyStore(db, self.egress)
        self.deliveries = Deliveries(db, retry_of(settings))
        self.consumer = Consumer(db, CONSUMER, start_at_end=True)

    # -- the loop ---------------------------------------------------------------------
    def run(self, stopping: threading.Event) -> None:
        log.info("webhooks.dispatcher_started", worker=self.worker)
        while not stopping.is_set():
            try:
                busy = self.tick()
            except Exception:
                log.exception("webhooks.dispatcher_error", worker=self.worker)
                busy = 0
            if not busy:
                stopping.wait(self.poll_seconds)

    def tick(self) -> int:
        """Queue deliveries for new events, then send the due ones; how many of both."""
        return self.queue_new_events() + self.deliver_due()

    def queue_new_events(self) -> int:
        if not self._behind():
            return 0

        def handle(conn: Connection, events: Sequence[Event]) -> None:
            queued = queue(conn, events, public_url=self.public_url)
            if queued:
                log.info("webhooks.queued", deliveries=queued, events=len(events))

        return self.consumer.catch_up(handle)

    def _behind(self) -> bool:
        """Are there events the consumer has not read? (Before the first policy there
        is no cursor, and nothing to deliver.)"""
        with self.db.read() as conn:
            position = conn.execute(
                select(s.event_cursors.c.position).where(s.event_cursors.c.consumer == CONSUMER)
            ).scalar_one_or_none()
            if position is None:
                return conn.execute(select(s.webhook_policies.c.id).limit(1)).first() is not None
            latest = conn.execute(select(func.max(s.events.c.id))).scalar()
        return latest is not None and int(latest) > int(position)

    def deliver_due(self) -> int:
        claimed = self.deliveries.claim(self.worker, self.lease)
        for delivery in claimed:
            self.deliver(delivery)
        return len(claimed)

    def deliver(self, delivery: Delivery, *, final: bool = False) -> Delivery:
        """Send a claimed delivery and record how it went; the delivery as recorded."""
        policy = self.policies.by_id(delivery.policy_id)
        if policy is None:  # deleted meanwhile, with its deliveries
            return delivery
        outcome = attempt(self.egress, policy, delivery)
        status = self.deliveries.finish(delivery, self.worker, outcome, final=final)
        log.info(
            "webhooks.attempt",
            delivery=delivery.id,
            policy=policy.id,
            event_id=delivery.event_id,
            attempt=delivery.attempts,
            status=status,
            response_code=outcome.response_code,
            error=outcome.error,
        )
        return self.deliveries.get(delivery.policy_id, delivery.id)

    # -- by hand ----------------------------------------------------------------------
    def send_test(self, project: str, policy_id: int, actor: str) -> Delivery:
        """Send a test event to a policy's target now; the delivery recorded for it
        (succeeded, or dead with the error: tests are not retried)."""
        policy = self.policies.get(project, policy_id)
        event = Event(
            id=0,
            occurred_at=utcnow(),
            type=TEST_EVENT,
            actor=actor,
            source=None,
            project=project,
            repository=None,
            resource=f"{project}/webhooks/{policy.name}",
            data={"message": "a test event from Portside", "webhook": policy.name},
        )

        def payload(delivery_id: int) -> str:
            return render(
                event,
                policy.payload_format,
                public_url=self.public_url,
                public=None,
                event_id=f"test-{delivery_id}",
            )

        delivery = self.deliveries.record_test(policy.id, payload, self.worker, self.lease)
        return self.deliver(delivery, final=True)


def start(
    db: Database, settings: Settings, worker: str, stopping: threading.Event
) -> threading.Thread:
    """The dispatcher in a daemon thread, until `stopping` is set."""
    dispatcher = Dispatcher(db, settings, worker)
    thread = threading.Thread(target=dispatcher.run, args=(stopping,), name="webhooks", daemon=True)
    thread.start()
    return thread
