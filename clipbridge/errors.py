"""The one exception type clipbridge raises for expected failures."""

from __future__ import annotations


class ClipError(Exception):
    """A failure a user can act on; `code` is what replies and REST show.

    Codes (the README's table explains each): invalid_json, invalid_request, payload_too_large, unsafe_camera_id,
    window_too_long, unknown_camera, no_footage, segment_missing, segment_unreadable, ffmpeg_failed, ffmpeg_timeout,
    storage_error, config_error, internal_error; REST only: not_found, unauthorized; `clipbridge publish` only:
    mqtt_unavailable, timeout.
    """

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
