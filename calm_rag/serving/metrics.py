"""Prometheus metrics (prometheus-client): requests, latency, queue length, batch sizes.

Each app gets its own `CollectorRegistry`, so several apps in one process (tests, a user mounting
two) never clash over metric names. Requests are labelled by route template (`/v1/ask`), never by
raw path, so a scanner probing random URLs cannot grow the label set: unmatched paths are "other".
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("calm_rag_requests", "HTTP requests by route, method and status",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("calm_rag_request_seconds", "HTTP request latency (until the last byte)",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_length = Gauge("calm_rag_queue_length", "Questions waiting for a batch", registry=self.registry)
        self.in_flight = Gauge("calm_rag_questions_in_flight", "Questions inside the running batch",
                               registry=self.registry)
        self.batch_size = Histogram("calm_rag_batch_size", "Questions per ask_batch call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.batch_seconds = Histogram("calm_rag_batch_seconds", "Duration of one ask_batch call",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.refused = Counter("calm_rag_refused", "Questions refused because the queue was full",
                               registry=self.registry)
        self.dropped = Counter("calm_rag_dropped", "Queued questions dropped because their client disconnected",
                               registry=self.registry)

    def watch_queue(self, queued: Callable[[], int], running: Callable[[], int]) -> None:
        self.queue_length.set_function(queued)
        self.in_flight.set_function(running)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI: counts and times every HTTP request, streaming ones until their last byte."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or ("/static" if scope["path"].startswith("/static/")
                                                                  else "other")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
