"""The app's Prometheus metrics, served at `GET /metrics` by `app.http_server`.

One `CollectorRegistry` per running app (never the library's global one), so tests and several
apps in one process keep apart. The code that records knows nothing of Prometheus: the gateway
and the vector store take plain callbacks, the run service is listened to
(`RunService.add_listener`) and the HTTP front times each Slack request; this module turns what
they report into metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from scheduler.runs import RunEvent

# The text format `generate_latest` writes (0.0.4, which every Prometheus server reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Slack wants an acknowledgement within 3 s: fine buckets below, a few above to see misses.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
# A run lasts from seconds (a small manual window) to hours (a year under the 1/min profile).
RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
VECTOR_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From Slack sending an event to the change stored: design.md wants it under 5 s.
MIRROR_LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class _RateLimitWait(Collector):
    """`backfill_rate_limit_wait_seconds_total`, read from the gateway's own counters at scrape
    time: pacing by the method's tier plus waiting out Retry-After (the gateway's pacer)."""

    def __init__(self) -> None:
        self.sources: list[Callable[[], float]] = []

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "backfill_rate_limit_wait_seconds",
            "Seconds Slack calls waited for rate limits (tier pacing and Retry-After)",
        )
        family.add_metric([], sum(source() for source in self.sources))
        yield family


class Metrics:
    """The metrics of one running app and the callbacks that feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.slack_calls = Counter(
            "backfill_slack_calls",
            "Slack Web API attempts by the backfill engine, retries included, by outcome "
            "(ok, rate_limited, transient, or Slack's error code)",
            ["method", "outcome"],
            registry=r,
        )
        self.http_429 = Counter(
            "backfill_http_429",
            "Slack answers that were rate limits (HTTP 429)",
            ["method"],
            registry=r,
        )
        self._rate_limit_wait = _RateLimitWait()
        r.register(self._rate_limit_wait)
        self.runs = Counter(
            "backfill_runs",
            "Runs ended, by type and final status",
            ["job_type", "status"],
            registry=r,
        )
        self.run_duration = Histogram(
            "backfill_run_duration_seconds",
            "Wall time of ended runs, start to end",
            ["job_type"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.messages_stored = Counter(
            "backfill_messages_stored", "Messages collected by ended runs", registry=r
        )
        self.messages_removed = Counter(
            "backfill_messages_removed",
            "Stored messages ended runs removed because Slack no longer had them",
            registry=r,
        )
        self.requests = Histogram(
            "backfill_request_seconds",
            "Time to answer (acknowledge) a request to /slack/events",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.vector_store = Histogram(
            "backfill_vector_store_seconds",
            "Latency of calls to the vector store (Chroma), by call",
            ["call"],
            buckets=VECTOR_BUCKETS,
            registry=r,
        )

        self.mirror_applied = Counter(
            "backfill_mirror_events_applied", "Slack events the live mirror applied", registry=r
        )
        self.mirror_backlog = Gauge(
            "backfill_mirror_backlog",
            "Events acknowledged and waiting in the live mirror's inbox (after the last batch)",
            registry=r,
        )
        self.mirror_lag = Histogram(
            "backfill_mirror_lag_seconds",
            "From Slack sending an event to the live mirror having applied it",
            buckets=MIRROR_LAG_BUCKETS,
            registry=r,
        )

    # -- callbacks handed to what records --------------------------------------------------------
    def on_slack_call(self, method: str, outcome: str) -> None:
        """The gateway's `CallObserver`."""
        self.slack_calls.labels(method=method, outcome=outcome).inc()
        if outcome == "rate_limited":
            self.http_429.labels(method=method).inc()

    def watch_rate_limit_wait(self, seconds_so_far: Callable[[], float]) -> None:
        """Add a source of cumulative rate-limit wait (one per gateway)."""
        self._rate_limit_wait.sources.append(seconds_so_far)

    def on_run_event(self, event: RunEvent) -> None:
        """A `RunService` listener: count each run once, when it ends."""
        run = event.run
        if event.kind != "finished" or run is None:
            return
        self.runs.labels(job_type=run.job_type, status=run.status).inc()
        self.messages_stored.inc(max(0, run.messages_collected))
        self.messages_removed.inc(max(0, run.messages_removed or 0))
        if run.completed_at is not None:
            seconds = (run.completed_at - run.started_at).total_seconds()
            self.run_duration.labels(job_type=run.job_type).observe(max(0.0, seconds))

    def on_mirror_batch(self, lags: list[float], backlog: int) -> None:
        """The live mirror's `BatchObserver`: one batch applied (each event's lag), and what
        still waits."""
        self.mirror_applied.inc(len(lags))
        for lag in lags:
            self.mirror_lag.observe(max(0.0, lag))
        self.mirror_backlog.set(backlog)

    def on_vector_call(self, call: str, seconds: float) -> None:
        """The vector store's `CallTimer`."""
        self.vector_store.labels(call=call).observe(seconds)

    def on_request(self, seconds: float) -> None:
        self.requests.observe(seconds)

    def exposition(self) -> bytes:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry)
