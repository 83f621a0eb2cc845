"""Prometheus metrics on a registry of their own (no global state; tests build as many as they like)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from clipbridge.model import JOB_ERROR_CODES, OUTCOMES

_LATENCY = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 90, 120, 300)
_FFMPEG = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.clip_requests = Counter(
            "clip_requests", "Clip jobs finished, by camera and final status", ["camera", "status"], registry=r
        )
        self.clip_latency = Histogram(
            "clip_latency_seconds", "Intake to finished job, footage wait included", buckets=_LATENCY, registry=r
        )
        self.clip_queue_depth = Gauge("clip_queue_depth", "Jobs pending, waiting for footage or processing", registry=r)
        self.clip_errors = Counter("clip_errors", "Failed or rejected requests, by error code", ["type"], registry=r)
        self.mqtt_connected = Gauge("mqtt_connected", "1 while connected to the broker", registry=r)
        self.mqtt_messages = Counter(
            "mqtt_messages",
            "Incident messages by outcome (accepted, duplicate, rejected, ignored)",
            ["result"],
            registry=r,
        )
        self.clip_footage_wait = Histogram(
            "clip_footage_wait_seconds", "Time a job waited for its footage to exist", buckets=_LATENCY, registry=r
        )
        self.clip_ffmpeg = Histogram(
            "clip_ffmpeg_seconds",
            "Cut time per clip (the FFmpeg run, or the box-level cut)",
            buckets=_FFMPEG,
            registry=r,
        )
        self.clip_cut_path = Counter(
            "clip_cut_path",
            "Clips by how they were cut (box: MP4 boxes in-process; ffmpeg) and why (mp4, or why not the box path)",
            ["path", "reason"],
            registry=r,
        )
        self.recordings_segments = Gauge(
            "recordings_segments", "Segments in the recordings index", ["camera"], registry=r
        )
        self.outbox_pending = Gauge(
            "outbox_pending", "Replies stored and not yet acknowledged by the broker", registry=r
        )
        self.webhook_deliveries = Counter(
            "webhook_deliveries",
            "Webhook delivery attempts by result (delivered, retried, failed: a 4xx, gave_up: retried too long)",
            ["result"],
            registry=r,
        )
        self.webhook_pending = Gauge("webhook_pending", "Webhook deliveries queued and not yet over", registry=r)
        self.retention_clips = Counter("retention_removed_clips", "Clips deleted by retention", registry=r)
        self.retention_bytes = Counter("retention_removed_bytes", "Bytes deleted by retention", registry=r)

    def init_labels(self, cameras: list[str]) -> None:
        """Create the label sets at zero: Prometheus never sees the first increment of a series that starts at 1."""
        for camera in cameras:
            for status in OUTCOMES:
                self.clip_requests.labels(camera=camera, status=status)
        for result in ("accepted", "duplicate", "rejected", "ignored"):
            self.mqtt_messages.labels(result=result)
        for result in ("delivered", "retried", "failed", "gave_up"):
            self.webhook_deliveries.labels(result=result)
        for code in JOB_ERROR_CODES:
            self.clip_errors.labels(type=code)

    def bind(self, *, mqtt_connected: Callable[[], float]) -> None:
        """Gauges read at scrape time (the store's counts are set by the /metrics route, which can await them)."""
        self.mqtt_connected.set_function(mqtt_connected)

    def bind_index(self, counts: Callable[[], tuple[int, int]]) -> None:
        """The recordings index's own counters, read at scrape time: (walks, folders listed)."""
        self.registry.register(_IndexCounters(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _IndexCounters(Collector):
    def __init__(self, counts: Callable[[], tuple[int, int]]) -> None:
        self._counts = counts

    def collect(self) -> list[CounterMetricFamily]:
        walks, listed = self._counts()
        return [
            CounterMetricFamily(
                "recordings_walks", "Full walks of the recordings (start-up, a root appearing)", value=walks
            ),
            CounterMetricFamily(
                "recordings_folders_listed", "Folders listed again by the reconcile or polling", value=listed
            ),
        ]
