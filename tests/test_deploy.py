"""Deployment files: docker-compose.yml, the broker's config, ACL and password script, Prometheus and Grafana.

Real files and real programs: docker-compose (Debian's v1 CLI, when installed) validates the compose file, the
clipbridge config is loaded with the compose file's environment, the dashboard's queries are checked against what
clipbridge's metrics really expose, and a mosquitto process runs the deployment config with the repository's ACL and
a password file made by mosquitto/make-passwd.sh.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from clipbridge.config import load_config
from clipbridge.metrics import Metrics
from tests.harness import MOSQUITTO, LogWatcher, free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
MOSQUITTO_CONF = ROOT / "mosquitto" / "mosquitto.conf"
ACL = ROOT / "mosquitto" / "acl"
MAKE_PASSWD = ROOT / "mosquitto" / "make-passwd.sh"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "clipbridge.json"
MEDIAMTX = ROOT / "deploy" / "mediamtx" / "mediamtx.yml"

CORE_SERVICES = {"mosquitto", "clipbridge", "prometheus", "grafana"}
MQTT_PASSWORDS = {"CLIPBRIDGE_MQTT_PASSWORD": "cb-Secret-1", "ANALYTICS_MQTT_PASSWORD": "an-Secret-2"}
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or (
    "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None
)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} against `env` (enough for this file)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


# --- docker-compose.yml ----------------------------------------------------------------------------------------------


def test_compose_has_the_services() -> None:
    services = compose()["services"]
    assert set(services) == {*CORE_SERVICES, "mediamtx", "postgres", "clipbridge-scaled", "minio", "minio-bucket",
                             "clipbridge-s3"}  # fmt: skip
    for name in CORE_SERVICES:
        assert "profiles" not in services[name], f"{name} must start with a plain `docker-compose up`"
    assert services["mediamtx"]["profiles"] == ["mediamtx"]
    assert services["postgres"]["profiles"] == services["clipbridge-scaled"]["profiles"] == ["scale"]

    broker = services["mosquitto"]
    assert broker["image"].startswith("eclipse-mosquitto:2")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in broker["volumes"]}
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./mosquitto/mosquitto.conf"
    assert mounts["/mosquitto/config/acl"] == "./mosquitto/acl"
    assert mounts["/mosquitto/config/passwd"] == "./mosquitto/passwd"  # made by make-passwd.sh, not committed
    assert "/mosquitto/data" in mounts

    service = services["clipbridge"]
    assert service["build"] == "."
    assert "mosquitto" in service["depends_on"]
    assert "./recordings:/recordings:ro" in service["volumes"]
    assert any(v.split(":")[1] == "/data" and not v.startswith(".") for v in service["volumes"]), "named volume"
    assert "/health" in " ".join(service["healthcheck"]["test"])

    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]
    grafana_mounts = " ".join(services["grafana"]["volumes"])
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in grafana_mounts
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards" in grafana_mounts
    assert "./deploy/mediamtx/mediamtx.yml:/mediamtx.yml:ro" in services["mediamtx"]["volumes"]

    # Every file the services mount exists (the password file is made by make-passwd.sh).
    for spec in (v for s in services.values() for v in s.get("volumes", [])):
        source = spec.split(":")[0]
        if source.startswith("./") and source not in ("./mosquitto/passwd", "./recordings"):
            assert (ROOT / source).exists(), f"{source} is mounted but missing"


def test_compose_environment_is_a_valid_clipbridge_config() -> None:
    """The service's environment in the compose file, applied to config.yaml as in the image, validates."""
    raw = compose()["services"]["clipbridge"]["environment"]
    env = {key: interpolate(str(value), MQTT_PASSWORDS) for key, value in raw.items()}
    config = load_config(ROOT / "config.yaml", env=env)
    assert config.http.host == "0.0.0.0"
    assert config.http.port == 8080
    assert config.http.public_base_url == "http://localhost:8080"
    assert config.http.api_token is None
    assert (config.mqtt.host, config.mqtt.port) == ("mosquitto", 1883)
    assert (config.mqtt.username, config.mqtt.password) == ("clipbridge", MQTT_PASSWORDS["CLIPBRIDGE_MQTT_PASSWORD"])
    assert (config.store.backend, config.store.sqlite_path) == ("sqlite", Path("/data/db/clipbridge.db"))
    assert config.clips.output_dir == Path("/data/videos")
    assert config.clips.annotations_dir == Path("/data/annotations")
    [source] = config.recordings.sources
    assert source.root == Path("/recordings")
    assert source.layout == "{camera_id}/%Y-%m-%d_%H-%M-%S-%f"
    assert source.timezone == "UTC"
    # MediaMTX writes what clipbridge reads: the same root and naming.
    record_path = yaml.safe_load(MEDIAMTX.read_text(encoding="utf-8"))["pathDefaults"]["recordPath"]
    assert record_path == "/recordings/%path/%Y-%m-%d_%H-%M-%S-%f"


def test_compose_scaled_replicas_share_postgresql_and_each_has_its_own_url() -> None:
    """`--profile scale --scale clipbridge-scaled=3`: the replicas' environment is a valid config on PostgreSQL, and
    each replica (instance id = its container's host name) gets its own URL."""
    services = compose()["services"]
    scaled = services["clipbridge-scaled"]
    assert {"mosquitto", "postgres"} <= set(scaled["depends_on"]) and "ports" not in scaled, "no fixed host port"
    env = {key: interpolate(str(value), {**MQTT_PASSWORDS, "CLIPBRIDGE_DB_PASSWORD": "db-Secret-3"})
           for key, value in scaled["environment"].items()}  # fmt: skip
    replicas = [
        load_config(ROOT / "config.yaml", env={**env, "CLIPBRIDGE__INSTANCE__ID": f"c0ffee{n}"}) for n in range(3)
    ]
    assert {c.store.backend for c in replicas} == {"postgresql"}
    assert replicas[0].store.describe() == "postgresql://clipbridge:***@postgres:5432/clipbridge"
    assert [c.public_url for c in replicas] == [f"http://c0ffee{n}:8080" for n in range(3)]
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "clipbridge"


def test_compose_s3_profile_has_minio_a_bucket_and_a_clipbridge_configured_for_it() -> None:
    services = compose()["services"]
    assert services["minio"]["profiles"] == services["minio-bucket"]["profiles"] == ["s3"]
    assert services["minio-bucket"]["entrypoint"][-1] == "local/clips"
    s3 = services["clipbridge-s3"]
    assert s3["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
    env = {key: interpolate(str(value), {**MQTT_PASSWORDS, "CLIPBRIDGE_S3_SECRET": "minio-Secret-9"})
           for key, value in s3["environment"].items()}  # fmt: skip
    config = load_config(ROOT / "config.yaml", env=env)
    assert (config.storage.backend, config.storage.s3.bucket) == ("s3", "clips")
    assert config.storage.s3.endpoint_url == "http://minio:9000"
    assert config.storage.s3.public_endpoint_url == "http://127.0.0.1:9000"
    assert config.storage.s3.secret_access_key is not None
    assert config.storage.s3.secret_access_key.get_secret_value() == "minio-Secret-9"
    assert "minio-Secret-9" not in repr(config)  # secrets are never logged


def test_compose_validates_with_docker_compose(tmp_path: Path) -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose): compose file not validated")
    empty_env_file = tmp_path / "empty.env"  # a .env in the work tree must not change the outcome
    empty_env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in MQTT_PASSWORDS}
    base = [exe, "--env-file", str(empty_env_file), "-f", str(COMPOSE)]
    for extra in ([], ["--profile", "mediamtx"], ["--profile", "scale"], ["--profile", "s3"]):
        ok = subprocess.run(
            [*base, *extra, "config", "-q"],
            cwd=ROOT,
            env={**env, **MQTT_PASSWORDS},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
    # Without the broker password, compose refuses to start and says which variable is missing.
    missing = subprocess.run(
        [*base, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert missing.returncode != 0
    assert "CLIPBRIDGE_MQTT_PASSWORD" in missing.stderr


def test_dockerfile_runs_the_service_as_configured() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^USER clipbridge$", text, re.M)
    assert re.search(r"^WORKDIR /app$", text, re.M)
    assert "http://127.0.0.1:8080/health" in text
    assert 'CMD ["clipbridge", "--config", "/app/config.yaml", "run"]' in text
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "mosquitto", "recordings", "data"} <= ignored
    assert not {"README.md", "pyproject.toml", "clipbridge", "config.yaml"} & ignored, "needed by the build"


# --- Prometheus and Grafana ------------------------------------------------------------------------------------------


def test_prometheus_scrapes_clipbridge() -> None:
    conf = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    [job] = [j for j in conf["scrape_configs"] if j["job_name"] == "clipbridge"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scrape_interval", conf["global"]["scrape_interval"]) == "15s"
    assert [t for sc in job["static_configs"] for t in sc["targets"]] == ["clipbridge:8080"]


def exposed_metric_names() -> set[str]:
    """Sample names in clipbridge's /metrics text, every labelled metric given one child (else it renders nothing)."""
    m = Metrics()
    m.bind(mqtt_connected=lambda: 0)
    m.clip_requests.labels(camera="cam1", status="done").inc(0)
    m.clip_errors.labels(type="no_footage").inc(0)
    m.mqtt_messages.labels(result="accepted").inc(0)
    m.recordings_segments.labels(camera="cam1").set(0)
    names = set()
    for line in m.render().decode().splitlines():
        if line and not line.startswith("#"):
            match = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
            assert match, line
            names.add(match.group())
    return names


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "by", "without", "on", "ignoring"}


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions, keywords, labels or durations."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for m in _IDENT.finditer(text):
        if text[m.end() :].lstrip().startswith("(") or m.group().lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator
        names.add(m.group())
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y|z"}[5m])))', {"a_bucket"}),
        ("sum(rate(a_total[$__rate_interval])) by (camera) / ignoring (x) b offset 1h > 1e3", {"a_total", "b"}),
        ('(sum(increase(a{s=~"done"}[1h])) or vector(0)) / sum without (le) (c)', {"a", "c"}),
    ],
)
def test_metric_names_in(expr: str, names: set[str]) -> None:
    assert metric_names_in(expr) == names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", []) if t.get("expr")]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if var.get("type") == "query" and isinstance(query, dict | str):
            exprs.append(query.get("query", "") if isinstance(query, dict) else query)
    return exprs


def test_dashboard_loads_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "clipbridge"
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [prometheus] = datasources["datasources"]
    assert prometheus["url"] == "http://prometheus:9090"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": prometheus["uid"]}, panel["title"]
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "clipbridge.yml").read_text())
    [provider] = providers["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"  # where docker-compose.yml mounts them
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_queries_only_metrics_clipbridge_exposes() -> None:
    exposed = exposed_metric_names()
    assert {"clip_requests_total", "clip_latency_seconds_bucket", "outbox_pending"} <= exposed  # the parse works
    used: set[str] = set()
    for expr in dashboard_exprs(json.loads(DASHBOARD.read_text(encoding="utf-8"))):
        names = metric_names_in(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exposed, f"{expr!r} uses {sorted(names - exposed)}, not in clipbridge's /metrics"
        used |= names
    wanted = {
        "clip_requests_total",
        "clip_latency_seconds_bucket",
        "clip_errors_total",
        "clip_queue_depth",
        "clip_footage_wait_seconds_bucket",
        "clip_ffmpeg_seconds_bucket",
        "mqtt_connected",
        "mqtt_messages_total",
        "recordings_segments",
        "outbox_pending",
    }
    assert wanted <= used, f"no panel for {sorted(wanted - used)}"


# --- Mosquitto: ACL, password script, the deployment config on a real broker -----------------------------------------


def acl_rules() -> dict[str, set[tuple[str, str]]]:
    """{username: {(access, topic)}} from the `user` and `topic` lines of mosquitto/acl."""
    rules: dict[str, set[tuple[str, str]]] = {}
    user = ""
    for line in ACL.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
        elif words[0] == "topic":
            access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
            rules.setdefault(user, set()).add((access, topic))
    return rules


def allowed(rules: set[tuple[str, str]], access: str, topic: str) -> bool:
    return any(a in (access, "readwrite") and mqtt.topic_matches_sub(pattern, topic) for a, pattern in rules)


def test_acl_matches_the_topics_clipbridge_uses() -> None:
    config = load_config(ROOT / "config.yaml", env={})
    rules = acl_rules()
    service = rules["clipbridge"]
    for topic in config.mqtt.topic_filters:
        assert ("read", topic) in service, f"clipbridge cannot read its request topic {topic}"
    assert allowed(service, "write", config.mqtt.result_topic.format(camera_id="cam1"))
    assert allowed(service, "write", config.mqtt.error_topic)
    assert allowed(service, "write", config.mqtt.status_topic)
    assert allowed(service, "write", "replies/analytics/clips")
    assert not allowed(service, "write", "cameras/cam1/incidents")

    publisher = rules["analytics"]
    assert allowed(publisher, "write", "cameras/cam1/incidents")
    assert allowed(publisher, "write", "clips/requests")
    assert allowed(publisher, "read", "clips/results/cam1")
    assert allowed(publisher, "read", "clips/errors")
    assert allowed(publisher, "read", "replies/analytics/clips")
    assert not allowed(publisher, "read", "replies/other/clips")
    assert not allowed(publisher, "write", "clips/results/cam1")


def test_make_passwd_says_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in MQTT_PASSWORDS}
    env["CLIPBRIDGE_MQTT_PASSWORD"] = "only-this-one"
    run = subprocess.run(
        ["bash", str(MAKE_PASSWD), str(tmp_path / "passwd")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode != 0
    assert "ANALYTICS_MQTT_PASSWORD" in run.stderr
    assert not (tmp_path / "passwd").exists()


def deployment_broker_config(port: int, workdir: Path, passwd: Path) -> str:
    """mosquitto/mosquitto.conf with its listener, files and logging moved to this test's port and folder."""
    replace = {
        "listener": f"listener {port} 127.0.0.1",
        "password_file": f"password_file {passwd}",
        "acl_file": f"acl_file {ACL}",
        "persistence_location": f"persistence_location {workdir / 'data'}/",
        "log_dest": "log_dest stderr",
    }
    out, seen = [], set()
    for line in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
        key = line.split()[0] if line.strip() and not line.lstrip().startswith("#") else ""
        if key in replace:
            if key in seen:
                continue  # one log destination, one listener
            seen.add(key)
            line = replace[key]
        out.append(line)
    assert seen == set(replace), f"mosquitto.conf lacks {set(replace) - seen}"
    if os.getuid() == 0:
        # Started as root, mosquitto drops to the `mosquitto` user, who cannot read this test's private folder.
        out.append("user root")
    return "\n".join(out) + "\n"


class Client:
    """A paho MQTT v5 client that records CONNACK, SUBACK and PUBACK results and messages, to wait on."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None) -> None:
        self.connack: queue.Queue[Any] = queue.Queue()
        self.acks: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"deploy-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, flags, rc, props: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.acks.put(rcs)
        self.client.on_publish = lambda c, u, mid, rc, props: self.acks.put(rc)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        self.reason = self.connack.get(timeout=10)

    def subscribe(self, *topics: str) -> list[Any]:
        self.client.subscribe([(t, 1) for t in topics])
        return list(self.acks.get(timeout=10))

    def publish(self, topic: str, payload: bytes) -> Any:
        self.client.publish(topic, payload, qos=1)
        return self.acks.get(timeout=10)

    def receive(self, topic: str) -> list[mqtt.MQTTMessage]:
        """Messages up to and including the first on `topic` (AssertionError after 10 s)."""
        got = []
        while True:
            try:
                msg = self.messages.get(timeout=10)
            except queue.Empty:
                raise AssertionError(f"no message on {topic}; got {[m.topic for m in got]}") from None
            got.append(msg)
            if msg.topic == topic:
                return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def deploy_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """mosquitto running mosquitto/mosquitto.conf + mosquitto/acl, users from mosquitto/make-passwd.sh."""
    assert MOSQUITTO, "mosquitto is not installed (Debian package mosquitto; make test installs it)"
    assert MOSQUITTO_PASSWD, "mosquitto_passwd is not installed (Debian package mosquitto)"
    workdir = tmp_path_factory.mktemp("deploy-broker")
    (workdir / "data").mkdir()
    passwd = workdir / "passwd"
    env = {**os.environ, "PATH": f"{Path(MOSQUITTO_PASSWD).parent}:{os.environ.get('PATH', '')}", **MQTT_PASSWORDS}
    made = subprocess.run(
        ["bash", str(MAKE_PASSWD), str(passwd)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert made.returncode == 0, made.stderr
    conf = workdir / "mosquitto.conf"
    for attempt in range(3):
        port = free_port()  # released before mosquitto binds it: another process may take it meanwhile
        conf.write_text(deployment_broker_config(port, workdir, passwd))
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log = LogWatcher(proc.stderr)
        try:
            # Logged before the socket is bound; "running" comes once every listener accepts connections.
            opened = log.wait_for(f"Opening ipv4 listen socket on port {port}", timeout=10)
            log.wait_for(" running", timeout=10, start=opened)
            break
        except AssertionError:
            proc.kill()
            proc.wait(timeout=10)
            log.join()
            if attempt == 2 or "Address already in use" not in log.tail():
                raise
    try:
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.join()


def test_broker_refuses_anonymous_clients(deploy_broker: int) -> None:
    client = Client(deploy_broker)
    try:
        assert client.reason.is_failure, client.reason
        assert client.reason.getName() == "Not authorized"
    finally:
        client.close()


def test_broker_refuses_a_wrong_password(deploy_broker: int) -> None:
    client = Client(deploy_broker, "clipbridge", "not-the-password")
    try:
        assert client.reason.is_failure, client.reason
    finally:
        client.close()


def test_clipbridge_receives_what_analytics_publishes(deploy_broker: int) -> None:
    service = Client(deploy_broker, "clipbridge", MQTT_PASSWORDS["CLIPBRIDGE_MQTT_PASSWORD"])
    publisher = Client(deploy_broker, "analytics", MQTT_PASSWORDS["ANALYTICS_MQTT_PASSWORD"])
    try:
        assert not service.reason.is_failure and not publisher.reason.is_failure
        granted = service.subscribe("cameras/+/incidents", "clips/requests")
        assert [rc.value for rc in granted] == [1, 1], granted
        incident = json.dumps({"event_id": "e1", "camera_id": "cam1"}).encode()
        assert not publisher.publish("cameras/cam1/incidents", incident).is_failure
        [msg] = service.receive("cameras/cam1/incidents")
        assert msg.payload == incident
        assert not publisher.publish("clips/requests", b"{}").is_failure
        assert service.receive("clips/requests")[-1].payload == b"{}"
        # The publisher cannot forge results: the broker refuses its publish.
        assert publisher.publish("clips/results/cam1", b"forged").getName() == "Not authorized"
    finally:
        service.close()
        publisher.close()


def test_publishers_read_only_their_own_replies(deploy_broker: int) -> None:
    service = Client(deploy_broker, "clipbridge", MQTT_PASSWORDS["CLIPBRIDGE_MQTT_PASSWORD"])
    publisher = Client(deploy_broker, "analytics", MQTT_PASSWORDS["ANALYTICS_MQTT_PASSWORD"])
    try:
        # Mosquitto may grant a subscription and filter at delivery: what counts is what arrives.
        publisher.subscribe("replies/other/#", "replies/#", "replies/analytics/#")
        assert not service.publish("replies/other/clips", b"for someone else").is_failure
        assert not service.publish("replies/analytics/clips", b"for analytics").is_failure
        # Same sender, same QoS: had the first reply been delivered, it would have arrived before the second.
        got = publisher.receive("replies/analytics/clips")
        assert [m.topic for m in got if m.topic.startswith("replies/other")] == []
        assert got[-1].payload == b"for analytics"
    finally:
        service.close()
        publisher.close()


def test_broker_config_keeps_the_deployment_settings() -> None:
    """The settings that protect queued incidents are real lines of the file the broker runs, not comments."""
    settings = {
        line.split()[0]: line.split(None, 1)[1]
        for line in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"
    assert settings["autosave_interval"] == "10"
    assert settings["max_queued_messages"] == "100000"
    assert settings["per_listener_settings"] == "false"
    assert settings["listener"] == "1883"
    assert settings["password_file"] == "/mosquitto/config/passwd"
    assert settings["acl_file"] == "/mosquitto/config/acl"
