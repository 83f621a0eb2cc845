"""The recordings index (core.py: lookups; sync.py: keeping it current; walk.py, names.py, camera.py: the parts)."""

from clipbridge.handlers.index.core import CameraSummary, SegmentFile
from clipbridge.handlers.index.sync import RecordingsIndex

__all__ = ["CameraSummary", "RecordingsIndex", "SegmentFile"]
