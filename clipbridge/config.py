"""Configuration: config.yaml validated by pydantic-settings, overridable by CLIPBRIDGE__SECTION__KEY variables.

Loaded once, in the entrypoint (`load_config`), and passed down. Environment values are converted by the key's
type (a password `123456` stays a string), lists and mappings are JSON, and an empty value, `null` or `~` unsets.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.types import EnvNoneType
from pydantic_settings.sources.utils import parse_env_vars

from clipbridge.errors import ClipError, describe_validation
from clipbridge.handlers.formats.spec import ClipbridgeTopic, RequestTopic
from clipbridge.handlers.layout import Layout

ENV_PREFIX = "CLIPBRIDGE__"
_UNSET = ("", "null", "~")


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
    def _layout_compiles(cls, value: str) -> str:
        # Built here, so a bad layout is a config_error naming the key, not a traceback at the first scan.
        Layout(pattern=value)
        return value

    def compiled_layout(self) -> Layout:
        return Layout.create(self.layout, self.timezone)


class RecordingsConfig(_Section):
    sources: list[SourceConfig] = Field(default_factory=lambda: [SourceConfig(root=Path("./recordings"))])
    # The newest segment of a camera counts as complete once it has not changed for this long.
    settle_seconds: float = Field(default=10.0, ge=0)
    # Holes between consecutive segments shorter than this are not reported as gaps (recorder naming jitter).
    gap_tolerance_seconds: float = Field(default=0.5, ge=0)
    # Probed durations outside (0, max] are treated as corrupt.
    max_segment_seconds: float = Field(default=3600.0, gt=0)
    # How new and deleted segments are noticed. auto: file-system events, except for roots on network or FUSE
    # mounts (nfs, nfs4, cifs, smb3, fuse.* in /proc/mounts), which are polled; events; poll.
    watch: Literal["auto", "events", "poll"] = "auto"
    # Polling looks at each camera's newest folder and newest segment this often.
    poll_seconds: float = Field(default=1.0, gt=0)
    # Folders whose mtime changed are listed again this often (missed events; no full rescan). The old name
    # rescan_seconds is still read.
    reconcile_seconds: float = Field(
        default=60.0, gt=0, validation_alias=AliasChoices("reconcile_seconds", "rescan_seconds")
    )


class ClipsConfig(_Section):
    snapshot_width: int = Field(default=640, ge=0, le=7680)  # a JPEG at the incident this wide; 0: none
    pre_seconds: float = Field(default=15.0, ge=0)
    post_seconds: float = Field(default=5.0, ge=0)
    max_duration_seconds: float = Field(default=300.0, gt=0)
    trim: Literal["keyframe", "segments"] = "keyframe"
    # auto: MP4/fMP4 sources are cut at the box level in-process, anything else with FFmpeg; ffmpeg: always FFmpeg.
    cutter: Literal["auto", "ffmpeg"] = "auto"
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
    # Plain topics carry clipbridge's own schema; `{topic, format, ...}` entries read other payloads (formats/).
    request_topics: list[RequestTopic] = Field(
        default=[ClipbridgeTopic(topic="cameras/+/incidents"), ClipbridgeTopic(topic="clips/requests")]
    )
    shared_group: str | None = None
    result_topic: str = "clips/results/{camera_id}"
    error_topic: str = "clips/errors"
    publish_accepted: bool = False
    max_payload_bytes: int = Field(default=65536, ge=128)
    reconnect_min_seconds: int = Field(default=1, ge=1)
    reconnect_max_seconds: int = Field(default=30, ge=1)

    @field_validator("request_topics", mode="before")
    @classmethod
    def _plain_topics(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            {"topic": v, "format": "clipbridge"}
            if isinstance(v, str)
            else ({"format": "clipbridge", **v} if isinstance(v, dict) and "format" not in v else v)
            for v in value
        ]

    @property
    def status_topic(self) -> str:
        return f"clipbridge/{self.client_id}/status"

    @property
    def topic_filters(self) -> list[str]:
        """Every request topic (filter) to subscribe to."""
        return [t.topic for t in self.request_topics]

    @property
    def native_topics(self) -> list[str]:
        """The request topics that take clipbridge's own schema (what `clipbridge clip` publishes to)."""
        return [t.topic for t in self.request_topics if t.format == "clipbridge"]


class StoreConfig(_Section):
    # `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or `postgresql://user:pass@host:5432/db`.
    url: str | None = None
    # The first release's key: the SQLite file, used when `url` is not given.
    path: Path = Path("./data/clipbridge.db")
    pool_size: int = Field(default=10, ge=1, le=100)  # PostgreSQL connections per instance
    connect_timeout_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _one_location(self) -> StoreConfig:
        if self.url is not None:
            scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
            if scheme not in ("sqlite", "postgresql", "postgres"):
                raise ValueError(f"url must start with sqlite:/// or postgresql://, got {_redact(self.url)!r}")
            if scheme == "sqlite" and not self.url.startswith("sqlite:///"):
                raise ValueError("a SQLite url is sqlite:///relative/path.db or sqlite:////absolute/path.db")
            if "path" in self.model_fields_set:
                raise ValueError("give store.url or store.path, not both")
        return self

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "postgresql" if self.url is not None and not self.url.startswith("sqlite:") else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url[len("sqlite:///") :]) if self.url is not None else self.path

    def describe(self) -> str:
        """Where the store is, for logs and /health, without a password."""
        return str(self.sqlite_path) if self.backend == "sqlite" else _redact(self.url or "")


class InstanceConfig(_Section):
    # Unique per running instance; names its MQTT session, its claims and the files it holds.
    id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    heartbeat_seconds: float = Field(default=5.0, gt=0)  # an instance silent for 3 of these is dead
    lease_seconds: float = Field(default=30.0, gt=0)  # a running job's claim; renewed every third of it
    poll_seconds: float = Field(default=2.0, gt=0)  # idle workers look for work this often (besides notifications)


class HttpConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    api_token: str | None = None
    # Signs the links the service hands out (they open without the token); empty: one generated and kept in the
    # store, shared by every instance on it.
    signing_key: SecretStr | None = None
    link_ttl_seconds: int = Field(default=604800, ge=60)


class RetentionConfig(_Section):
    max_age_days: float = Field(default=30.0, gt=0)
    max_total_bytes: int | None = Field(default=None, gt=0)
    sweep_interval_seconds: float = Field(default=300.0, gt=0)


WebhookEvent = Literal["done", "partial", "failed", "rejected", "expired"]


class S3Config(_Section):
    bucket: str = Field(default="", pattern=r"^$|^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
    prefix: str = "clips/"  # keys are {prefix}{camera_id}/{YYYY}/{MM}/{DD}/{file}
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")  # MinIO, Ceph, R2; empty: AWS
    # Presigned links name this endpoint instead (signed for its host): when uploads go over an internal name
    # (http://minio:9000) that the link's users cannot reach.
    public_endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    region: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Empty: the standard AWS chain (environment, shared profile, instance role). Never logged.
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    presign_seconds: int = Field(default=604800, ge=1, le=604800)  # SigV4 links live at most 7 days
    keep_local_copy: bool = False
    storage_class: str | None = None  # e.g. STANDARD_IA; empty: the bucket's default
    max_attempts: int = Field(default=10, ge=1, le=50)  # per request, with backoff (5xx, throttling, connection)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    multipart_threshold_mb: int = Field(default=64, ge=5)  # larger files go up in parts of this size

    @model_validator(mode="after")
    def _both_keys(self) -> S3Config:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither (the AWS chain)")
        return self


class StorageConfig(_Section):
    backend: Literal["local", "s3"] = "local"
    s3: S3Config = Field(default_factory=S3Config)

    @model_validator(mode="after")
    def _bucket_named(self) -> StorageConfig:
        if self.backend == "s3" and not self.s3.bucket:
            raise ValueError("storage.backend is s3 but storage.s3.bucket is empty")
        return self


class WebhookConfig(_Section):
    url: str = Field(pattern=r"^https?://", description="where each result is POSTed")
    name: str | None = None  # names its queued deliveries (default: the url); keep it when the url changes
    events: list[WebhookEvent] = Field(default=["done", "partial", "failed"], min_length=1)
    secret: str | None = None  # signs each body: X-Clipbridge-Signature (HMAC-SHA256)
    timeout_seconds: float = Field(default=10.0, gt=0)
    retry_first_seconds: float = Field(default=5.0, gt=0)  # backoff after the first failure, doubling
    retry_max_seconds: float = Field(default=600.0, gt=0)  # ... up to this (with jitter)
    give_up_hours: float = Field(default=24.0, gt=0)  # a delivery still failing this long after it was queued

    @property
    def key(self) -> str:
        return self.name or self.url


class HomeAssistantConfig(_Section):
    discovery: bool = False
    prefix: str = "homeassistant"
    node_id: str = Field(default="clipbridge", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    stale_seconds: float = Field(default=60.0, gt=0)  # a camera whose newest segment is older is "not alive"


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Config(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter="__", case_sensitive=False
    )

    recordings: RecordingsConfig = Field(default_factory=RecordingsConfig)
    clips: ClipsConfig = Field(default_factory=ClipsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _webhook_names(self) -> Config:
        keys = [w.key for w in self.webhooks]
        if len(set(keys)) != len(keys):
            raise ValueError("two webhooks have the same name (or url): give each a distinct `name`")
        return self

    @model_validator(mode="after")
    def _window_fits(self) -> Config:
        if self.clips.pre_seconds + self.clips.post_seconds > self.clips.max_duration_seconds:
            raise ValueError("clips.pre_seconds + clips.post_seconds exceeds clips.max_duration_seconds")
        return self

    @property
    def public_url(self) -> str:
        """`http.public_base_url`, in which `{instance_id}` names this instance: replicas started from one config
        (docker compose --scale) each get their own URL, the one their peers redirect downloads to."""
        return self.http.public_base_url.replace("{instance_id}", self.instance.id)

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
                "store": self.store.model_copy(
                    update={"path": fix(self.store.path)}
                    | (
                        {"url": f"sqlite:///{fix(self.store.sqlite_path)}"}
                        if self.store.url is not None and self.store.backend == "sqlite"
                        else {}
                    )
                ),
            }
        )


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
    data = _merge(data, _Environment(Config, env)())
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ClipError(
            "config_error", f"invalid configuration in {origin}: {describe_validation(exc, limit=20)}"
        ) from exc
    return config.resolved(base)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (os.environ in production, a dict in tests)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, env_parse_none_str="null")

    def _load_env_vars(self) -> Mapping[str, str | None]:
        known = set(Config.model_fields)
        ours: dict[str, str] = {}
        for name, raw in self._environ.items():
            if not name.upper().startswith(ENV_PREFIX):
                continue
            keys = [k for k in name[len(ENV_PREFIX) :].lower().split("__") if k]
            if keys and keys[0] not in known:
                raise ClipError("config_error", f"environment variable {name}: unknown key {'.'.join(keys)!r}")
            text = raw.strip()
            if text[:1] in ("[", "{"):
                try:
                    json.loads(text)
                except ValueError as exc:
                    raise ClipError("config_error", f"environment variable {name}: {raw!r} is not JSON: {exc}") from exc
            ours[name] = "null" if text in _UNSET else raw
        return parse_env_vars(ours, False, False, "null")

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        return _unwrap_none(super().prepare_field_value(field_name, field, value, value_is_complex))


def _redact(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db"""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def _unwrap_none(value: Any) -> Any:
    """pydantic-settings marks `null` as EnvNoneType (a str subclass) inside nested values: make it None."""
    if isinstance(value, dict):
        return {k: _unwrap_none(v) for k, v in value.items()}
    if isinstance(value, EnvNoneType):
        return None
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` wins, key by key, at every depth (the environment over the file)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
