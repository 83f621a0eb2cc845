"""Assertions on real media: packets compared byte for byte between a clip and its sources."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import av


@dataclass(frozen=True)
class Packet:
    digest: str
    pts: float  # seconds, file timeline
    duration: float
    key: bool


def video_packets(path: Path) -> list[Packet]:
    """Video packets in decode order, payload hashed (MPEG-TS Annex B start codes normalised to AVCC lengths)."""
    out = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        tb = vs.time_base
        for p in c.demux(vs):
            if p.pts is None or p.size == 0:
                continue
            out.append(
                Packet(
                    hashlib.sha1(_nal_payload(bytes(p))).hexdigest(),
                    float(p.pts * tb),
                    float((p.duration or 0) * tb),
                    p.is_keyframe,
                )
            )
    return out


def _nal_payload(data: bytes) -> bytes:
    """Strip framing so Annex B (TS) and length-prefixed (MP4) H.264 compare equal; AUD NAL units dropped."""
    if data.startswith(b"\x00\x00\x00\x01") or data.startswith(b"\x00\x00\x01"):
        nals = [
            n.lstrip(b"\x00") for n in data.replace(b"\x00\x00\x01", b"\x00\x00\x00\x01").split(b"\x00\x00\x00\x01")
        ]
    else:
        nals, i = [], 0
        while i + 4 <= len(data):
            n = int.from_bytes(data[i : i + 4], "big")
            nals.append(data[i + 4 : i + 4 + n])
            i += 4 + n
    return b"".join(n for n in nals if n and (n[0] & 0x1F) not in (9, 7, 8, 6))


@dataclass(frozen=True)
class Coverage:
    first_wall: datetime  # wall-clock time of the first displayed frame
    end_wall: datetime  # wall-clock end of the last displayed frame
    packets: int


def check_clip_against_sources(clip: Path, sources: list[tuple[Path, datetime]]) -> Coverage:
    """Every clip video packet must equal, in order, a contiguous run of the sources' packets; returns what it covers."""
    clip_pk = video_packets(clip)
    assert clip_pk, "the clip has no video packets"
    assert clip_pk[0].key, "the clip does not start on a keyframe"
    flat: list[tuple[Packet, datetime]] = []
    for path, start in sources:
        pk = video_packets(path)
        base = min(p.pts for p in pk)
        flat += [(p, start + timedelta(seconds=p.pts - base)) for p in pk]
    digests = [p.digest for p, _ in flat]
    first = digests.index(clip_pk[0].digest)
    run = flat[first : first + len(clip_pk)]
    assert [p.digest for p, _ in run] == [p.digest for p in clip_pk], "clip packets differ from the source packets"
    walls = [(w, p.duration) for p, w in run]
    return Coverage(
        first_wall=min(w for w, _ in walls),
        end_wall=max(w + timedelta(seconds=d) for w, d in walls),
        packets=len(clip_pk),
    )


def first_frame_decodes(clip: Path) -> bool:
    with av.open(str(clip)) as c:
        for frame in c.decode(video=0):
            return bool(frame.key_frame)
    return False


def audio_packets(path: Path) -> list[str]:
    """Hashes of the audio packets in decode order."""
    with av.open(str(path)) as c:
        return [hashlib.sha1(bytes(p)).hexdigest() for p in c.demux(c.streams.audio[0]) if p.size]


def in_order_within(part: list[str], whole: list[str]) -> bool:
    """True if `part` appears in `whole` in the same order (a subsequence)."""
    rest = iter(whole)
    return all(any(h == w for w in rest) for h in part)
