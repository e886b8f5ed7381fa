"""The read API's Prometheus metrics, in a registry of its own (the worker's are another
process's): request latency by route, and the open live feeds.

Latency is measured to the response's first byte (its status line), so a live feed,
which stays open for minutes, counts the time it took to start, like any other route.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY: Final = CollectorRegistry()

REQUEST_SECONDS: Final = Histogram(
    "creator_scores_api_request_seconds",
    "Read API requests: seconds to the first byte of the response, by route template",
    ["route", "method", "status"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
FEEDS_OPEN: Final = Gauge(
    "creator_scores_api_feeds_open", "Live change feeds (SSE) open now", registry=REGISTRY
)
FEED_EVENTS: Final = Counter(
    "creator_scores_api_feed_events", "Change events sent on live feeds", registry=REGISTRY
)
RATE_LIMITED: Final = Counter(
    "creator_scores_api_rate_limited",
    "Requests refused (429) past their key's rate limit, by partner",
    ["partner"],
    registry=REGISTRY,
)


class LatencyMiddleware:
    """Observes `REQUEST_SECONDS` for every HTTP request (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                REQUEST_SECONDS.labels(template, scope["method"], str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, timed_send)
