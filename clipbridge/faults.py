"""The fault seams, for the tests: freeze the service at a named point so a test can kill -9 it there, or hold it at
one until the test lets it go on.

Set CLIPBRIDGE_TEST_PAUSE_AT to one of POINTS (frozen for good), or CLIPBRIDGE_TEST_HOLD_AT to one of HOLDS and
CLIPBRIDGE_TEST_RELEASE to a FIFO the test opens to release it. Unset (always, outside those tests) a point is one
dictionary lookup. The process stalls as a slow service would; nothing else changes.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

POINTS = (
    "intake_before_commit",  # an incident was received, its job is not committed yet
    "intake_before_ack",  # the job is committed, the PUBACK not sent yet
    "storage_before_commit",  # the clip is uploaded to the bucket, its job not yet finished in the store
    "outbox_before_publish",  # the job is finished and its reply stored, not yet published
)


HOLDS = ("walk_before_ready",)  # the start-up walk has listed the tree; the index is not ready yet


def hold_point(name: str) -> None:
    """Block at a named point until the test opens the FIFO named by CLIPBRIDGE_TEST_RELEASE for writing."""
    if os.environ.get("CLIPBRIDGE_TEST_HOLD_AT") == name:
        fifo = os.environ["CLIPBRIDGE_TEST_RELEASE"]
        logger.warning("test fault seam: holding at %s until %s is opened (CLIPBRIDGE_TEST_HOLD_AT)", name, fifo)
        with open(fifo, "rb"):
            pass


def pause_point(name: str) -> None:
    if os.environ.get("CLIPBRIDGE_TEST_PAUSE_AT") == name:
        logger.warning("test fault seam: frozen at %s (CLIPBRIDGE_TEST_PAUSE_AT)", name)
        threading.Event().wait()
