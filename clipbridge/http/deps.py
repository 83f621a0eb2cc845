"""What the routes depend on, handed to `create_app` explicitly and read back through `Annotated` dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request

from clipbridge.config import Config
from clipbridge.handlers.index import RecordingsIndex
from clipbridge.handlers.instances import Membership
from clipbridge.handlers.jobs import JobRunner
from clipbridge.handlers.replies import Links
from clipbridge.handlers.storage.base import ClipStorage
from clipbridge.handlers.store import Store
from clipbridge.metrics import Metrics


class BrokerState(Protocol):
    @property
    def connected(self) -> bool: ...


@dataclass(frozen=True)
class Parts:
    config: Config
    store: Store
    runner: JobRunner
    index: RecordingsIndex
    metrics: Metrics
    links: Links
    ffmpeg: str
    broker: BrokerState | None  # None when MQTT is disabled
    membership: Membership
    storage: ClipStorage


def _parts(request: Request) -> Parts:
    parts: Parts = request.app.state.parts
    return parts


def _store(request: Request) -> Store:
    return _parts(request).store


def _runner(request: Request) -> JobRunner:
    return _parts(request).runner


def _index(request: Request) -> RecordingsIndex:
    return _parts(request).index


def _links(request: Request) -> Links:
    return _parts(request).links


def _metrics(request: Request) -> Metrics:
    return _parts(request).metrics


PartsDep = Annotated[Parts, Depends(_parts)]
StoreDep = Annotated[Store, Depends(_store)]
RunnerDep = Annotated[JobRunner, Depends(_runner)]
IndexDep = Annotated[RecordingsIndex, Depends(_index)]
LinksDep = Annotated[Links, Depends(_links)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
