"""Configuration: config.yaml validated by pydantic, overridable by CLIPBRIDGE__SECTION__KEY environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from clipbridge.errors import ClipError

ENV_PREFIX = "CLIPBRIDGE__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    root: Path
    layout: str = "{camera_id}/{camera_id}_%Y%m%d_%H%M%S"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("layout")
    @classmethod
    def _has_camera(cls, value: str) -> str:
        if "{camera_id}" not in value:
            raise ValueError(f"layout {value!r} must contain {{camera_id}}")
        return value


class RecordingsConfig(_Section):
    sources: list[SourceConfig] = Field(default_factory=lambda: [SourceConfig(root=Path("./recordings"))])
    # The newest segment of a camera counts as complete once it has not changed for this long.
    settle_seconds: float = Field(default=10.0, ge=0)
    # Holes between consecutive segments shorter than this are not reported as gaps (recorder naming jitter).
    gap_tolerance_seconds: float = Field(default=0.5, ge=0)
    # Probed durations outside (0, max] are treated as corrupt.
    max_segment_seconds: float = Field(default=3600.0, gt=0)
    # A full rescan besides file-system events (missed events, network mounts, roots created later).
    rescan_seconds: float = Field(default=60.0, gt=0)


class ClipsConfig(_Section):
    pre_seconds: float = Field(default=15.0, ge=0)
    post_seconds: float = Field(default=5.0, ge=0)
    max_duration_seconds: float = Field(default=300.0, gt=0)
    trim: Literal["keyframe", "segments"] = "keyframe"
    ffmpeg: str = "auto"
    ffmpeg_timeout_seconds: float = Field(default=120.0, gt=0)
    ffmpeg_retries: int = Field(default=3, ge=0)
    output_dir: Path = Path("./videos")
    annotations_dir: Path = Path("./annotations")
    workers: int = Field(default=2, ge=1)
    max_wait_seconds: float = Field(default=60.0, ge=0)
    # Pending jobs beyond this stop acknowledging new MQTT messages (the broker holds them).
    max_backlog: int = Field(default=1000, ge=1)


class TlsConfig(_Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class MqttConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = "clipbridge"
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    keepalive: int = Field(default=30, ge=5)
    session_expiry_seconds: int = Field(default=86400, ge=0)
    receive_maximum: int = Field(default=64, ge=1, le=65535)
    request_topics: list[str] = Field(default_factory=lambda: ["cameras/+/incidents", "clips/requests"])
    shared_group: str | None = None
    result_topic: str = "clips/results/{camera_id}"
    error_topic: str = "clips/errors"
    publish_accepted: bool = False
    max_payload_bytes: int = Field(default=65536, ge=128)
    reconnect_min_seconds: int = Field(default=1, ge=1)
    reconnect_max_seconds: int = Field(default=30, ge=1)

    @property
    def status_topic(self) -> str:
        return f"clipbridge/{self.client_id}/status"


class StoreConfig(_Section):
    path: Path = Path("./data/clipbridge.db")


class HttpConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    api_token: str | None = None


class RetentionConfig(_Section):
    max_age_days: float = Field(default=30.0, gt=0)
    max_total_bytes: int | None = Field(default=None, gt=0)
    sweep_interval_seconds: float = Field(default=300.0, gt=0)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Config(_Section):
    recordings: RecordingsConfig = Field(default_factory=RecordingsConfig)
    clips: ClipsConfig = Field(default_factory=ClipsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _window_fits(self) -> Config:
        if self.clips.pre_seconds + self.clips.post_seconds > self.clips.max_duration_seconds:
            raise ValueError("clips.pre_seconds + clips.post_seconds exceeds clips.max_duration_seconds")
        return self

    def resolved(self, base: Path) -> Config:
        """Relative paths in the file are relative to the config file's folder."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (base / p).resolve()

        return self.model_copy(
            update={
                "recordings": self.recordings.model_copy(
                    update={"sources": [s.model_copy(update={"root": fix(s.root)}) for s in self.recordings.sources]}
                ),
                "clips": self.clips.model_copy(
                    update={
                        "output_dir": fix(self.clips.output_dir),
                        "annotations_dir": fix(self.clips.annotations_dir),
                    }
                ),
                "store": self.store.model_copy(update={"path": fix(self.store.path)}),
            }
        )


def _env_value(name: str, raw: str) -> Any:
    """Scalars stay strings (pydantic converts them by the field's type, so a password `123456` or `yes` stays a
    string); `[...]`/`{...}` are parsed as YAML/JSON; empty, `null` or `~` mean unset."""
    text = raw.strip()
    if text in ("", "null", "~"):
        return None
    if text[0] in "[{":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ClipError("config_error", f"environment variable {name}: cannot parse {raw!r}: {exc}") from exc
    return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """CLIPBRIDGE__MQTT__PORT=1884 sets data["mqtt"]["port"]."""
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[keys[-1]] = _env_value(name, raw)
    return data


def _format_validation(exc: ValidationError, origin: str) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {where!r}")
        else:
            parts.append(f"{where}: {err['msg']}")
    return f"invalid configuration in {origin}: " + "; ".join(parts)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, validate; raises ClipError(config_error) naming the bad key."""
    env = os.environ if env is None else env
    if path is None and env.get("CLIPBRIDGE_CONFIG"):
        path = Path(env["CLIPBRIDGE_CONFIG"])
    data: dict[str, Any] = {}
    base = Path.cwd()
    origin = "defaults"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ClipError("config_error", f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ClipError("config_error", f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ClipError("config_error", f"config file {path} must be a mapping of sections")
        data = loaded or {}
        base = Path(path).resolve().parent
        origin = str(path)
    data = _apply_env(data, env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ClipError("config_error", _format_validation(exc, origin)) from exc
    return config.resolved(base)
