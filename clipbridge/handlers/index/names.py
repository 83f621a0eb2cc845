"""Segment names <-> (camera, start in microseconds) at walk speed, and names rebuilt from the start (pure).

A walk parses every name, so parsing avoids a `datetime` per file: the local hour a name is in is converted to UTC
once and cached. Where the layout makes the name a function of the start (fixed-width fields only: the seed naming,
MediaMTX's, Frigate's), the index keeps only the start and `render` gives the name back; names that do not
round-trip (`%s`, `%z`, a local hour a DST change makes ambiguous) are kept as they are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from clipbridge.handlers.layout import _TOKEN, CAMERA_ID_RE, EXTENSIONS, Layout, is_safe_camera_id

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2, "%f": 6}
_UNITS = ("Y", "m", "d", "H", "M")


# (camera id, start in microseconds, exact: `render(camera_id, start, ext)` gives the name back). A plain tuple: the
# walk makes a million of them.
Parsed = tuple[str, int, bool]
_MMSS = {f"{m:02d}{s:02d}": m * 60 + s for m in range(60) for s in range(60)}
_MM = {f"{m:02d}": m * 60 for m in range(60)}
_UNKNOWN = (0, False)  # not in the hour cache yet (compared by identity)


def to_datetime(us: int) -> datetime:
    # Exact: a double holds epoch seconds to 0.24 us until 2106, and fromtimestamp rounds to the microsecond.
    return datetime.fromtimestamp(us / 1e6, UTC)


def to_us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


class NameCodec:
    """Fast `parse` and `render` for one compiled layout."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.tz = layout.tz
        self._utc = layout.tz.utcoffset(None) == timedelta(0) and str(layout.tz) in ("UTC", "Etc/UTC")
        # The extension is matched with the rest: one regex call per name.
        regex = re.compile(layout.regex.pattern + r"\.(?i:" + "|".join(e[1:] for e in EXTENSIONS) + ")")
        self._match = regex.fullmatch
        index = regex.groupindex
        self._camera = index["camera_id"]
        self._has_s, self._has_f = "f_S" in index, "f_f" in index
        # One group() call for all fields; an absent field reads the camera id again and is ignored.
        self._idx = tuple(index.get(f"f_{u}", self._camera) for u in (*_UNITS, "S", "f"))
        self._other = "f_epoch" in index or "f_tz" in index  # parsed the slow way, never rebuilt
        tokens = _TOKEN.findall(layout.pattern)
        self.exact = not self._other and all(t == "{camera_id}" or t == "%%" or t in _FIXED for t in tokens)
        # Names to the second: a recorder's next name can be guessed from its last one and its segment length.
        self.predictable = self.exact and self._has_s and not self._has_f
        self._pieces = [p for p in re.split(f"({_TOKEN.pattern})", layout.pattern) if p]
        folder = layout.pattern.rpartition("/")[0]
        self.folder_has_time = any(t.startswith("%") and t != "%%" for t in _TOKEN.findall(folder))
        self._folder_regex = _folder_regex(folder) if self.folder_has_time else None
        self._hours: dict[tuple[str, ...], tuple[int, bool] | None] = {}
        self._safe: dict[str, bool] = {}

    def parse(self, relpath: str) -> Parsed | None:
        """The camera and start of a path relative to the source root, or None if it is not a recording."""
        m = self._match(relpath)
        if m is None:
            return None
        camera_id = m.group(self._camera)
        safe = self._safe.get(camera_id)
        if safe is None:
            safe = self._safe[camera_id] = is_safe_camera_id(camera_id)
        if not safe:
            return None
        if self._other:
            found = self.layout.parse(relpath)
            return None if found is None else (camera_id, to_us(found[1]), False)
        year, month, day, hour, minute, second, micros = m.group(*self._idx)
        key = (year, month, day, hour)  # a layout without %s has all of %Y %m %d %H %M
        base = self._hours.get(key, _UNKNOWN)
        if base is _UNKNOWN:
            base = self._hours[key] = self._hour(key)
        if base is None:
            return None
        offset = _MMSS.get(minute + second) if self._has_s else _MM.get(minute)
        if offset is None:
            return None  # minute or second past 59
        us = (base[0] + offset) * 1_000_000
        return camera_id, us + int(micros) if self._has_f else us, base[1]

    def _hour(self, key: tuple[str, ...]) -> tuple[int, bool] | None:
        """UTC epoch seconds of a local hour, and whether names in it round-trip (no DST change within it)."""
        try:
            year, month, day, hour = (int(v) for v in key)
            local = datetime(year, month, day, hour, tzinfo=self.tz)
        except ValueError:
            return None
        if self._utc:
            return int((local - EPOCH).total_seconds()), self.exact
        utc = local.astimezone(UTC)
        later = (utc + timedelta(minutes=59, seconds=59)).astimezone(self.tz)
        back = utc.astimezone(self.tz)
        same = back.replace(tzinfo=None) == local.replace(tzinfo=None) and later.utcoffset() == back.utcoffset()
        return int((utc - EPOCH).total_seconds()), same and self.exact

    def folder_span(self, reldir: str) -> tuple[int, int]:
        """The starts [lo, hi) in microseconds that segments in this folder can have (all, if folders carry no time)."""
        m = self._folder_regex.fullmatch(reldir) if self._folder_regex is not None else None
        if m is None:
            return -(2**63), 2**63 - 1
        fields = {k[2:]: int(v) for k, v in m.groupdict().items() if v is not None}
        lo = datetime(fields.get("Y", 1970), fields.get("m", 1), fields.get("d", 1), fields.get("H", 0),
                      fields.get("M", 0))  # fmt: skip
        finest = next((u for u in reversed(_UNITS) if u in fields), "Y")
        if finest in ("Y", "m"):
            months = lo.year * 12 + lo.month - 1 + (12 if finest == "Y" else 1)
            hi = lo.replace(year=months // 12, month=months % 12 + 1)
        else:
            hi = lo + {"d": timedelta(days=1), "H": timedelta(hours=1), "M": timedelta(minutes=1)}[finest]
        return to_us(lo.replace(tzinfo=self.tz)), to_us(hi.replace(tzinfo=self.tz))

    def render(self, camera_id: str, start_us: int, ext: str) -> str:
        """The relative path of a segment whose name round-trips (`Parsed.exact`)."""
        t = to_datetime(start_us)
        if not self._utc:
            t = t.astimezone(self.tz)
        values = {"%Y": t.year, "%m": t.month, "%d": t.day, "%H": t.hour, "%M": t.minute, "%S": t.second,
                  "%f": t.microsecond}  # fmt: skip
        out = []
        for piece in self._pieces:
            if piece == "{camera_id}":
                out.append(camera_id)
            elif piece == "%%":
                out.append("%")
            elif piece in _FIXED:
                out.append(f"{values[piece]:0{_FIXED[piece]}d}")
            else:
                out.append(piece)
        return "".join(out) + ext


def _folder_regex(pattern: str) -> re.Pattern[str]:
    """Matches a folder of the layout; groups `f_Y` ... for the time fields it carries."""
    parts: list[str] = []
    seen: set[str] = set()
    for piece in re.split(f"({_TOKEN.pattern})", pattern):
        if not piece:
            continue
        if piece == "{camera_id}":
            parts.append(CAMERA_ID_RE)
        elif piece in _FIXED and piece != "%f":
            group = "f_" + piece[1]
            parts.append(rf"\d{{{_FIXED[piece]}}}" if group in seen else rf"(?P<{group}>\d{{{_FIXED[piece]}}})")
            seen.add(group)
        elif piece == "%%":
            parts.append("%")
        elif piece.startswith("%"):
            parts.append(r".+?")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))
