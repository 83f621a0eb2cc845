"""This instance among its peers: a heartbeat into the store, and a cached view of who else is alive and which
cameras they record (so an event for a camera another site's instance records is accepted, not `unknown_camera`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from clipbridge.errors import ClipError
from clipbridge.handlers.store import Instance, Store

logger = logging.getLogger(__name__)


class Membership:
    def __init__(
        self, *, store: Store, instance_id: str, base_url: str, cameras: Callable[[], dict[str, str]], every: float
    ) -> None:
        self.id = instance_id
        self._store = store
        self._base_url = base_url
        self._cameras = cameras  # camera id -> IANA zone of its source, from this instance's recordings index
        self._every = every
        self._started = datetime.now(UTC)
        self._peers: list[Instance] = []
        self._failing = False

    async def beat(self) -> None:
        """One heartbeat and a fresh view of the live peers; raises ClipError(storage_error)."""
        me = Instance(self.id, self._base_url, self._cameras(), self._started)
        await self._store.heartbeat(me)
        self._peers = await self._store.peers()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.beat()
                if self._failing:
                    logger.info("heartbeat: the job store is back; %d live instance(s)", len(self._peers))
                self._failing = False
            except ClipError as exc:
                if not self._failing:
                    logger.error("heartbeat failed: %s", exc.message)
                self._failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._every)

    async def leave(self) -> None:
        """Shutdown: peers stop counting on this instance at once (its reply claims lapse)."""
        with contextlib.suppress(ClipError):
            await self._store.leave(self.id)

    def live(self) -> list[Instance]:
        return list(self._peers)

    def zone_of(self, camera_id: str) -> str | None:
        """The time zone a live peer records this camera in, if any peer does."""
        for peer in self._peers:
            if peer.id != self.id and camera_id in peer.cameras:
                return peer.cameras[camera_id]
        return None

    def cameras_elsewhere(self) -> set[str]:
        return {c for p in self._peers if p.id != self.id for c in p.cameras}

    def url_of(self, instance_id: str) -> str | None:
        return next((p.base_url for p in self._peers if p.id == instance_id), None)
