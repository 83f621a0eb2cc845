"""Recording file names <-> (camera, start time), for layouts such as MediaMTX's `%path/%Y-%m-%d_%H-%M-%S-%f`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

EXTENSIONS = (".mp4", ".mkv", ".avi", ".ts")
CAMERA_ID_RE = r"[A-Za-z0-9_.\-]{1,64}"

_FIELDS: dict[str, str] = {
    "%Y": r"\d{4}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%f": r"\d{6}",
    "%z": r"Z|[+-]\d{4}",
    "%s": r"\d{1,12}",
}
_TOKEN = re.compile(r"\{camera_id\}|%[YmdHMSfzs%]|%.", re.S)


def is_safe_camera_id(camera_id: str) -> bool:
    """A camera id is a name, never a path: no separators, no `.` or `..`."""
    return bool(re.fullmatch(CAMERA_ID_RE, camera_id)) and camera_id not in (".", "..")


@dataclass(frozen=True)
class Layout:
    """A compiled `layout` pattern, relative to a source root, without the file extension."""

    pattern: str
    tz: tzinfo = UTC
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        seen: set[str] = set()
        for piece in re.split(f"({_TOKEN.pattern})", self.pattern):
            if not piece:
                continue
            if piece == "{camera_id}":
                group, body = "camera_id", CAMERA_ID_RE
            elif piece == "%%":
                parts.append("%")
                continue
            elif piece in _FIELDS:
                group, body = "f_" + {"%z": "tz", "%s": "epoch"}.get(piece, piece[1]), _FIELDS[piece]
            elif piece.startswith("%"):
                raise ValueError(f"layout {self.pattern!r}: unsupported field {piece!r}")
            else:
                parts.append(re.escape(piece))
                continue
            # A field used twice (camera id in folder and file name) must match the same text both times.
            parts.append(f"(?P={group})" if group in seen else f"(?P<{group}>{body})")
            seen.add(group)
        if "camera_id" not in seen:
            raise ValueError(f"layout {self.pattern!r} must contain {{camera_id}}")
        if "f_epoch" not in seen and not {"f_Y", "f_m", "f_d", "f_H", "f_M"} <= seen:
            raise ValueError(f"layout {self.pattern!r} needs %s or all of %Y %m %d %H %M")
        object.__setattr__(self, "_regex", re.compile("".join(parts)))

    @classmethod
    def create(cls, pattern: str, timezone_name: str = "UTC") -> Layout:
        return cls(pattern=pattern, tz=ZoneInfo(timezone_name))

    @property
    def regex(self) -> re.Pattern[str]:
        """Matches the path without its extension; groups `camera_id` and `f_Y`, `f_m`, ... for the fields."""
        return self._regex

    def parse(self, relpath: str) -> tuple[str, datetime] | None:
        """(camera_id, aware UTC start) for a path relative to the root, or None if it is not a recording."""
        stem, dot, ext = relpath.rpartition(".")
        if not dot or "." + ext.lower() not in EXTENSIONS:
            return None
        m = self._regex.fullmatch(stem)
        if m is None:
            return None
        camera_id = m["camera_id"]
        if not is_safe_camera_id(camera_id):
            return None
        groups = m.groupdict()
        try:
            if groups.get("f_epoch") is not None:
                start = datetime.fromtimestamp(int(groups["f_epoch"]), UTC)
            else:
                tz = self.tz
                offset = groups.get("f_tz")
                if offset is not None:
                    tz = UTC if offset == "Z" else _fixed_offset(offset)
                start = datetime(
                    int(groups["f_Y"]),
                    int(groups["f_m"]),
                    int(groups["f_d"]),
                    int(groups["f_H"]),
                    int(groups["f_M"]),
                    int(groups.get("f_S") or 0),
                    int(groups.get("f_f") or 0),
                    tzinfo=tz,
                ).astimezone(UTC)
        except (ValueError, OverflowError):
            return None
        return camera_id, start

    def render(self, camera_id: str, start: datetime, ext: str = ".mp4") -> str:
        """The relative path a recorder using this layout would write for a segment starting at `start`."""
        local = start.astimezone(self.tz)

        def sub(match: re.Match[str]) -> str:
            token = match.group(0)
            if token == "{camera_id}":
                return camera_id
            if token == "%z":
                off = local.utcoffset() or timedelta(0)
                return "Z" if off == timedelta(0) else local.strftime("%z")
            if token == "%s":
                return str(int(start.timestamp()))
            return local.strftime(token)

        return _TOKEN.sub(sub, self.pattern) + ext


def _fixed_offset(text: str) -> tzinfo:
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))
