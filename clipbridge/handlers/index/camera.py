"""One camera's segments as packed arrays: 8 bytes per segment where its name can be rebuilt from its start."""

from __future__ import annotations

import bisect
from array import array
from typing import NamedTuple


class Entry(NamedTuple):
    start_us: int
    source: int
    relpath: str | None  # None: the camera's usual source and extension, named by `NameCodec.render`


class CameraSegments:
    """Starts in microseconds, sorted (`array('q')`); `odd` keeps the few names that do not round-trip, by start.

    A segment is *plain* when its name is its layout's rendering of its start with the camera's usual source and
    extension; only plain segments cost nothing beyond their start.
    """

    __slots__ = ("ext", "odd", "source", "starts")

    def __init__(self, source: int, ext: str) -> None:
        self.source = source
        self.ext = ext
        self.starts = array("q")
        self.odd: dict[int, list[tuple[int, str]]] = {}

    def __len__(self) -> int:
        return len(self.starts)

    def is_plain(self, source: int, relpath: str, exact: bool) -> bool:
        return exact and source == self.source and relpath.endswith(self.ext)

    def append(self, start_us: int, source: int, relpath: str, plain: bool) -> None:
        """Walk-time add, in any order; `finish` sorts."""
        self.starts.append(start_us)
        if not plain:
            self.odd.setdefault(start_us, []).append((source, relpath))

    def finish(self) -> None:
        self.starts = array("q", sorted(self.starts))

    def add(self, start_us: int, source: int, relpath: str, plain: bool) -> bool:
        """Insert one segment; False if it is already known."""
        lo = bisect.bisect_left(self.starts, start_us)
        hi = bisect.bisect_right(self.starts, start_us, lo)
        listed = self.odd.get(start_us)
        if plain:
            if hi - lo > (len(listed) if listed else 0):
                return False
        else:
            if listed and (source, relpath) in listed:
                return False
            self.odd.setdefault(start_us, []).append((source, relpath))
        self.starts.insert(hi, start_us)
        return True

    def discard(self, start_us: int, source: int, relpath: str, plain: bool) -> bool:
        """Remove one segment; False if it was not known."""
        lo = bisect.bisect_left(self.starts, start_us)
        hi = bisect.bisect_right(self.starts, start_us, lo)
        listed = self.odd.get(start_us)
        if plain:
            if hi - lo <= (len(listed) if listed else 0):
                return False
        else:
            if not listed or (source, relpath) not in listed:
                return False
            listed.remove((source, relpath))
            if not listed:
                del self.odd[start_us]
        del self.starts[lo]
        return True

    def drop_range(self, a: int, b: int) -> None:
        """Remove positions [a, b) (all plain: the caller checked)."""
        del self.starts[a:b]

    def entry(self, i: int) -> Entry:
        us = self.starts[i]
        listed = self.odd.get(us) if self.odd else None
        if not listed:
            return Entry(us, self.source, None)
        lo = bisect.bisect_left(self.starts, us)
        plain = bisect.bisect_right(self.starts, us, lo) - lo - len(listed)
        rank = i - lo
        if rank < plain:
            return Entry(us, self.source, None)
        source, relpath = listed[rank - plain]
        return Entry(us, source, relpath)

    def span(self, lo_us: int, hi_us: int) -> tuple[int, int]:
        """Positions [a, b) of the segments starting in [lo_us, hi_us)."""
        a = bisect.bisect_left(self.starts, lo_us)
        return a, bisect.bisect_left(self.starts, hi_us, a)
