"""Clip annotations as JSON, YAML and TXT files, written atomically next to each other.

The content is `replies.annotation(job, record)`: the reply's field names plus the seed's (`incident_time`,
`source_clips`, `source`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from clipbridge.model import FileKind

FORMATS: tuple[FileKind, ...] = ("json", "yaml", "txt")


def render(record: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(dict(record), sort_keys=False, allow_unicode=True)
    if fmt == "txt":
        return _render_txt(record)
    raise ValueError(f"unknown annotation format {fmt!r}")


def _render_txt(r: Mapping[str, Any]) -> str:
    lines = [
        f"Clip {r['clip_id']} ({r['status']})",
        f"Camera:          {r['camera_id']}",
        f"Incident:        {r['incident_time']}",
        f"Requested:       {r['requested_start']} .. {r['requested_end']}",
        f"Actual:          {r['actual_start']} .. {r['actual_end']}",
        f"Duration:        {r['duration_seconds']:.3f} s",
        f"Trim:            {r['trim']}",
        f"Video file:      {r['video_file']} ({r['file_size']} bytes)",
        f"Codecs:          video {r['codecs']['video']}, audio {r['codecs']['audio'] or 'none'}",
        f"Created:         {r['created_at']}, cut {r['completed_at']} (source: {r['source']})",
        "Source segments:",
    ]
    lines += [
        f"  - {s['filename']}  {s['start_time']} .. {s['end_time']}  {s['file_size']} bytes" for s in r["source_clips"]
    ]
    lines.append("Gaps:" if r["gaps"] else "Gaps:            none")
    lines += [f"  - {g['start']} .. {g['end']}  {g['seconds']:.3f} s  {g['reason']}" for g in r["gaps"]]
    if r.get("metadata"):
        lines.append("Metadata:        " + json.dumps(r["metadata"], ensure_ascii=False))
    return "\n".join(lines) + "\n"


def write_annotations(record: Mapping[str, Any], directory: Path, basename: str) -> dict[FileKind, Path]:
    """Write `basename.json/.yaml/.txt`; each appears complete or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[FileKind, Path] = {}
    for fmt in FORMATS:
        path = directory / f"{basename}.{fmt}"
        atomic_write_text(path, render(record, fmt))
        paths[fmt] = path
    return paths


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
