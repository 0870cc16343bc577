"""Prometheus helpers. Names follow `sigmasight_<svc>_<what>_<unit>` (api.md #6)."""

from __future__ import annotations

import threading

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.registry import REGISTRY

_lock = threading.Lock()
_metrics: dict[str, Counter | Gauge | Histogram] = {}

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


def _get(kind: type, name: str, doc: str, labels: tuple[str, ...], **kw: object) -> object:
    with _lock:
        metric = _metrics.get(name)
        if metric is None:
            metric = kind(name, doc, labels, **kw)
            _metrics[name] = metric
        return metric


def counter(service: str, what: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    """A counter `sigmasight_<service>_<what>_total` (created once per process)."""
    return _get(Counter, f"sigmasight_{service}_{what}", doc, labels)  # type: ignore[return-value]


def gauge(service: str, what: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    """A gauge `sigmasight_<service>_<what>`."""
    return _get(Gauge, f"sigmasight_{service}_{what}", doc, labels)  # type: ignore[return-value]


def histogram(service: str, what: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
    """A histogram `sigmasight_<service>_<what>` with latency buckets from 1 ms to 15 min."""
    return _get(Histogram, f"sigmasight_{service}_{what}", doc, labels, buckets=DURATION_BUCKETS)  # type: ignore[return-value]


def events_published(service: str) -> Counter:
    """Events a service published, by routing key and outcome (ok, retry, dlq)."""
    return counter(service, "events_published", "Events published", ("routing_key", "outcome"))


def events_consumed(service: str) -> Counter:
    """Events a service consumed, by routing key and outcome (ok, retry, dlq, duplicate)."""
    return counter(service, "events_consumed", "Events consumed", ("routing_key", "outcome"))


def batch_handler_duration(service: str) -> Histogram:
    """Duration of one batch-handler call, by routing key (count = batches; with events_consumed
    the mean batch size follows: events ÷ batches)."""
    return histogram(service, "batch_handler_seconds", "Batch handler call duration", ("routing_key",))


def job_duration(service: str) -> Histogram:
    """Duration of async jobs by type and final status."""
    return histogram(service, "job_duration_seconds", "Async job duration", ("job_type", "status"))


def exposition() -> tuple[bytes, str]:
    """Prometheus text exposition of this process's registry and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
