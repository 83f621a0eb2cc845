"""MQTT topic names and filters as small values: the rules live here once (as aiomqtt's topic.py does)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TOPIC_BYTES = 65535


@dataclass(frozen=True)
class Topic:
    """A topic a message can be published to: no wildcards, no NUL, not a `$` system topic, not empty."""

    value: str

    def __post_init__(self) -> None:
        problem = why_not_publishable(self.value)
        if problem:
            raise ValueError(f"{self.value[:80]!r} is not a topic to publish to: {problem}")

    @classmethod
    def parse(cls, text: object) -> Topic | None:
        """The topic, or None when `text` is not a publishable topic string."""
        return cls(text) if isinstance(text, str) and not why_not_publishable(text) else None

    def __str__(self) -> str:
        return self.value


def why_not_publishable(text: str) -> str | None:
    if not text:
        return "it is empty"
    if "+" in text or "#" in text:
        return "it has a wildcard (+ or #)"
    if text.startswith("$"):
        return "$-topics belong to the broker"
    if "\x00" in text:
        return "it contains NUL"
    if len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        return "it is too long"
    return None


@dataclass(frozen=True)
class Wildcard:
    """A subscription filter, e.g. `cameras/+/incidents`; `$share/<group>/<filter>` is understood."""

    value: str

    def __post_init__(self) -> None:
        levels = self.filter.split("/")
        for i, level in enumerate(levels):
            if ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+"):
                raise ValueError(f"{self.value!r}: + and # must fill a whole level, # only the last one")

    @property
    def group(self) -> str | None:
        return self.value.split("/", 2)[1] if self.value.startswith("$share/") else None

    @property
    def filter(self) -> str:
        """The filter a message topic is matched against (without `$share/<group>/`)."""
        return self.value.split("/", 2)[2] if self.value.startswith("$share/") else self.value

    def shared(self, group: str | None) -> Wildcard:
        return Wildcard(f"$share/{group}/{self.filter}") if group else Wildcard(self.filter)

    def match(self, topic: str) -> tuple[str, ...] | None:
        """The levels filled by `+` if `topic` matches, else None."""
        f, t = self.filter.split("/"), topic.split("/")
        plus: list[str] = []
        for i, level in enumerate(f):
            if level == "#":
                return tuple(plus)
            if i >= len(t):
                return None
            if level == "+":
                plus.append(t[i])
            elif level != t[i]:
                return None
        return tuple(plus) if len(f) == len(t) else None
