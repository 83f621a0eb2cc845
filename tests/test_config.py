from pathlib import Path

import pytest

from clipbridge.config import load_config
from clipbridge.errors import ClipError

ROOT = Path(__file__).resolve().parent.parent


def test_repo_config_yaml_is_valid_and_resolves_paths_relative_to_itself():
    config = load_config(ROOT / "config.yaml", env={})
    assert config.clips.pre_seconds == 15 and config.clips.post_seconds == 5
    assert config.recordings.sources[0].root == ROOT / "recordings"
    assert config.store.path == ROOT / "data" / "clipbridge.db"


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("clips:\n  pre_secs: 10\n")
    with pytest.raises(ClipError) as err:
        load_config(path, env={})
    assert err.value.code == "config_error"
    assert "clips.pre_secs" in err.value.message


def test_environment_overrides_any_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mqtt:\n  port: 1883\n")
    env = {
        "CLIPBRIDGE__MQTT__PORT": "1884",
        "CLIPBRIDGE__CLIPS__TRIM": "segments",
        "CLIPBRIDGE__MQTT__REQUEST_TOPICS": '["a/+", "b"]',
        "UNRELATED": "x",
    }
    config = load_config(path, env=env)
    assert config.mqtt.port == 1884
    assert config.clips.trim == "segments"
    assert config.mqtt.topic_filters == ["a/+", "b"]
    assert {t.format for t in config.mqtt.request_topics} == {"clipbridge"}


def test_config_path_from_environment_variable(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("clips:\n  workers: 5\n")
    assert load_config(None, env={"CLIPBRIDGE_CONFIG": str(path)}).clips.workers == 5


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("recordings:\n  sources:\n    - root: /x\n      timezone: Mars/Base\n", "Mars/Base"),
        ("recordings:\n  sources:\n    - root: /x\n      layout: '%Y%m%d'\n", "camera_id"),
        ("clips:\n  trim: fast\n", "clips.trim"),
        ("- a\n- b\n", "mapping"),
        ("clips: [\n", "not valid YAML"),
    ],
)
def test_bad_values_are_named(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ClipError) as err:
        load_config(path, env={})
    assert needle in err.value.message


def test_unknown_env_key_is_an_error():
    with pytest.raises(ClipError) as err:
        load_config(None, env={"CLIPBRIDGE__CLIPS__PRE_SECS": "3"})
    assert "clips.pre_secs" in err.value.message


def test_environment_scalars_are_converted_by_the_field_type_not_by_yaml():
    env = {
        "CLIPBRIDGE__MQTT__PASSWORD": "123456",
        "CLIPBRIDGE__MQTT__USERNAME": "yes",
        "CLIPBRIDGE__MQTT__PUBLISH_ACCEPTED": "true",
        "CLIPBRIDGE__RETENTION__SWEEP_INTERVAL_SECONDS": "0.5",
        "CLIPBRIDGE__HTTP__API_TOKEN": "",
        "CLIPBRIDGE__MQTT__SHARED_GROUP": "null",
    }
    config = load_config(None, env=env)
    assert config.mqtt.password == "123456" and config.mqtt.username == "yes"
    assert config.mqtt.publish_accepted is True
    assert config.retention.sweep_interval_seconds == 0.5
    assert config.http.api_token is None and config.mqtt.shared_group is None


def test_environment_structures_must_parse():
    with pytest.raises(ClipError) as err:
        load_config(None, env={"CLIPBRIDGE__MQTT__REQUEST_TOPICS": "[a, b"})
    assert "CLIPBRIDGE__MQTT__REQUEST_TOPICS" in err.value.message


def test_a_bad_layout_is_a_config_error_naming_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("recordings:\n  sources:\n    - root: /x\n      layout: '{camera_id}/%Q%Y%m%d%H%M'\n")
    with pytest.raises(ClipError) as err:
        load_config(path, env={})
    assert err.value.code == "config_error"
    assert "recordings.sources.0.layout" in err.value.message and "%Q" in err.value.message


def test_an_empty_environment_value_unsets_what_the_file_set_and_leaves_its_siblings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  api_token: secret\n  port: 9000\nmqtt:\n  username: u\n  password: p\n")
    config = load_config(path, env={"CLIPBRIDGE__HTTP__API_TOKEN": "", "CLIPBRIDGE__MQTT__PASSWORD": "~"})
    assert config.http.api_token is None and config.http.port == 9000
    assert config.mqtt.password is None and config.mqtt.username == "u"


def test_unknown_top_level_env_key_is_an_error():
    with pytest.raises(ClipError) as err:
        load_config(None, env={"CLIPBRIDGE__NOPE__X": "1"})
    assert "CLIPBRIDGE__NOPE__X" in err.value.message


def test_public_base_url_may_name_the_instance(tmp_path):
    config = load_config(None, env={"CLIPBRIDGE__INSTANCE__ID": "replica-2",
                                    "CLIPBRIDGE__HTTP__PUBLIC_BASE_URL": "http://{instance_id}:8080"})  # fmt: skip
    assert config.public_url == "http://replica-2:8080"
