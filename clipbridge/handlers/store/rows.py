"""Rows to model values, shared by the backends (SQLite gives ISO text and floats, PostgreSQL datetimes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from clipbridge.model import ClipRecord, ErrorInfo, Job, Window


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def record_json(record: ClipRecord | None) -> str | None:
    return json.dumps(record.to_json()) if record is not None else None


def job_from_row(row: Mapping[str, Any]) -> Job:
    result = _json(row["result"]) if row["result"] else None
    created, updated = _dt(row["created_at"]), _dt(row["updated_at"])
    incident, start, end = _dt(row["incident"]), _dt(row["window_start"]), _dt(row["window_end"])
    assert created and updated and incident and start and end
    return Job(
        clip_id=row["clip_id"],
        dedupe_key=row["dedupe_key"],
        event_id=row["event_id"],
        camera_id=row["camera_id"],
        window=Window(incident, start, end),
        metadata=_json(row["metadata"]),
        source=row["source"],
        status=row["status"],
        attempts=row["attempts"],
        record=ClipRecord.from_json(result) if result else None,
        error=ErrorInfo(row["error_code"], row["error_message"] or "") if row["error_code"] else None,
        created_at=created,
        updated_at=updated,
        completed_at=_dt(row["completed_at"]),
        claimed_by=row["claimed_by"] if "claimed_by" in row.keys() else None,  # noqa: SIM118 (sqlite3.Row)
    )
