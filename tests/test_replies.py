"""Topic rules and reply routing, defined once (bridge/topic.py, handlers/replies.py): plain tables, no network."""

from __future__ import annotations

import pytest

from clipbridge.bridge.topic import Topic, Wildcard
from clipbridge.handlers.replies import Routing
from clipbridge.model import ReplyTarget


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("replies/a", True),
        ("a", True),
        ("", False),
        ("replies/#", False),
        ("replies/+/x", False),
        ("$SYS/broker", False),
        ("a\x00b", False),
        ("é/ü", True),
    ],
)
def test_publishable_topics(text, ok):
    assert (Topic.parse(text) is not None) == ok
    if not ok:
        with pytest.raises(ValueError):
            Topic(text)


@pytest.mark.parametrize(
    ("wildcard", "topic", "plus"),
    [
        ("cameras/+/incidents", "cameras/cam1/incidents", ("cam1",)),
        ("cameras/+/incidents", "cameras/cam1/other", None),
        ("cameras/+/incidents", "cameras/cam1/incidents/x", None),
        ("clips/requests", "clips/requests", ()),
        ("site/#", "site/a/b/c", ()),
        ("site/+/#", "site/a/b/c", ("a",)),
        ("$share/g/cameras/+/incidents", "cameras/cam9/incidents", ("cam9",)),
    ],
)
def test_wildcard_matching_is_share_aware(wildcard, topic, plus):
    assert Wildcard(wildcard).match(topic) == plus


def test_shared_subscription_names():
    assert Wildcard("cameras/+/incidents").shared("workers").value == "$share/workers/cameras/+/incidents"
    assert Wildcard("$share/workers/a/b").filter == "a/b" and Wildcard("$share/workers/a/b").group == "workers"
    assert Wildcard("a/b").shared(None).value == "a/b"
    for bad in ("a/#/b", "a/b+", "a#"):
        with pytest.raises(ValueError):
            Wildcard(bad)


ROUTING = Routing(result_topic="clips/results/{camera_id}", error_topic="clips/errors")


@pytest.mark.parametrize(
    ("response_topic", "correlation", "reply_to", "expected"),
    [
        ("r/1", b"abc", "mine", ReplyTarget("r/1", b"abc")),  # MQTT v5 Response Topic first, correlation verbatim
        (None, None, "mine", ReplyTarget("mine", b"")),  # then the payload's reply_to
        (None, b"c", None, ReplyTarget("clips/results/cam1", b"c")),  # else the result topic for the camera
        ("r/#", None, None, ReplyTarget("clips/results/cam1", b"")),  # a response topic one cannot publish to
    ],
)
def test_results_are_routed_in_one_order(response_topic, correlation, reply_to, expected):
    assert ROUTING.result_target(response_topic, correlation, reply_to, "cam1") == expected


@pytest.mark.parametrize(
    ("response_topic", "reply_to", "expected"),
    [
        ("r/1", "mine", "r/1"),
        (None, "mine", "mine"),
        (None, "bad/#", "clips/errors"),  # an unusable reply_to in a rejected event falls back to the error topic
        (None, 42, "clips/errors"),
        (None, "x" * 600, "clips/errors"),
        (None, None, "clips/errors"),
    ],
)
def test_rejections_are_routed_to_the_error_topic_unless_asked_otherwise(response_topic, reply_to, expected):
    assert ROUTING.error_target(response_topic, None, reply_to).topic == expected
