"""Prometheus metrics: request counters per route and status, bytes in and out, and
gauges read from the database at scrape time (uploads in progress, blob store size).

`portside serve` points PROMETHEUS_MULTIPROC_DIR at a private directory before the
workers start, so counters from every worker process are summed at /metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from portside.metadata import schema as s
from portside.metadata.db import Database

REQUESTS = Counter(
    "portside_http_requests_total", "HTTP requests handled", ["route", "method", "status"]
)
BYTES_IN = Counter("portside_http_received_bytes_total", "Request body bytes received")
BYTES_OUT = Counter("portside_http_sent_bytes_total", "Response body bytes sent")


_request_counters: dict[tuple[str, str, int], Any] = {}


def count_request(route: str, method: str, status: int) -> None:
    """REQUESTS.labels(...).inc() with the label lookup cached (it is on every request)."""
    key = (route, method, status)
    counter = _request_counters.get(key)
    if counter is None:
        counter = _request_counters[key] = REQUESTS.labels(route, method, str(status))
    counter.inc()


class StoreCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self.db.read() as conn:
            uploads = conn.execute(select(func.count()).select_from(s.uploads)).scalar_one()
            count, size = conn.execute(
                select(func.count(), func.coalesce(func.sum(s.blobs.c.size), 0))
            ).one()
        yield GaugeMetricFamily(
            "portside_uploads_in_progress", "Blob uploads started and not finished", uploads
        )
        yield GaugeMetricFamily("portside_blobs", "Blobs in the store", count)
        yield GaugeMetricFamily("portside_blob_store_bytes", "Bytes of blobs in the store", size)


def render(db: Database) -> bytes:
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(REQUESTS)
        registry.register(BYTES_IN)
        registry.register(BYTES_OUT)
    registry.register(StoreCollector(db))
    return generate_latest(registry)
