"""Which samples of which files make the clip, and where their bytes go: the same packets FFmpeg's concat path keeps.

Video: from the planner's keyframe (or the file's first sample) to the last sample whose decode time is before the
planner's outpoint (the concat demuxer's rule). Audio follows the video's span, segment by segment: a sample is kept
when its middle lies inside the span, so the audio track never drifts more than half a frame from the video.
"""

from __future__ import annotations

import bisect
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from clipbridge.handlers.mp4cut.boxes import Movie, Track, iter_boxes
from clipbridge.handlers.mp4cut.reasons import Unsupported

VIDEO_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1"}
AUDIO_ENTRIES = {b"mp4a", b"Opus", b"fLaC", b"ac-3", b"ec-3", b".mp3"}


@dataclass(frozen=True)
class Source:
    """One plan item: the file, its parsed tables, and the concat trim points in seconds of the file's timeline."""

    path: Path
    movie: Movie
    inpoint: float | None
    outpoint: float | None


@dataclass
class OutTrack:
    template: Track  # the first segment's track: its sample description and headers are written
    stsd: bytes
    dur: array  # 'q'
    cts: array  # 'q'
    size: array  # 'q'
    rel: array  # 'q', offset of each sample from the start of the mdat payload
    sync: array  # 'B'
    edit_media: int  # media time where presentation starts
    edit_length: int  # presented length, in the track's timescale


@dataclass(frozen=True)
class Piece:
    path: Path
    start: int
    length: int


@dataclass(frozen=True)
class Selection:
    video: OutTrack
    audio: OutTrack | None
    pieces: tuple[Piece, ...]
    data_size: int

    @property
    def video_seconds(self) -> float:
        """The video track's media duration (mdhd), the figure FFmpeg and PyAV report as the stream's duration."""
        return sum(self.video.dur) / self.video.template.timescale


def select(sources: Sequence[Source], tail: Source | None = None) -> Selection:
    """Choose the samples of the clip; raises Unsupported when the box path cannot give the FFmpeg path's result.

    `tail` is the segment after the last one, if there is one: recorders store the last few tens of milliseconds of a
    segment's audio at the start of the next file, so a clip ending on a segment boundary takes them from there."""
    first = sources[0].movie
    vstsd = _checked_entry(first.video, VIDEO_ENTRIES)
    astsd = None if first.audio is None else _checked_entry(first.audio, AUDIO_ENTRIES)
    for src in sources[1:]:
        _same_description(first.video, src.movie.video)
        if (first.audio is None) != (src.movie.audio is None):
            raise Unsupported("tracks", f"{src.path.name} differs in having an audio track")
        if first.audio is not None and src.movie.audio is not None:
            _same_description(first.audio, src.movie.audio)

    vts = first.video.timescale
    video = OutTrack(first.video, _hvc1(vstsd), *_empty(), 0, 0)
    audio = None if astsd is None or first.audio is None else OutTrack(first.audio, astsd, *_empty(), 0, 0)
    pieces: list[Piece] = []
    cursor = 0  # bytes of mdat payload so far
    decoded = 0  # video decode time so far, in vts
    audio_at = 0.0  # seconds of audio so far, on the output timeline (video start = 0)
    lead = 0
    for i, src in enumerate(sources):
        v = src.movie.video
        s, e = _video_range(src, require_key=i == 0)
        if i == 0:
            lead = v.cts[s]
            video.edit_media = lead
        elif v.cts[s] != lead:
            raise Unsupported("edit_list", f"{src.path.name}: composition offset {v.cts[s]} at its start, not {lead}")
        span_start = (v.dts[s] + v.cts[s] - v.edit) / vts + v.delay  # source presentation of the first video sample
        durs = _durations(v, s, e)
        span = sum(durs)
        audio_part: list[tuple[Track, int, int]] = []
        if audio is not None and src.movie.audio is not None:
            a = src.movie.audio
            a_from, a_to, skip = _audio_range(
                a, span_start, decoded / vts, (decoded + span) / vts, audio_at, first=i == 0
            )
            if i == 0:
                audio.edit_media = skip
            adurs = _durations(a, a_from, a_to) if a_to > a_from else array("q")
            audio_at += sum(adurs) / a.timescale - (skip / a.timescale if i == 0 else 0.0)
            audio_part.append((a, a_from, a_to))
        spans = [(t, a, b) for t, a, b in [(v, s, e), *audio_part] if b > a]
        lo = min(min(t.offset[a:b]) for t, a, b in spans)
        hi = max(max(o + z for o, z in zip(t.offset[a:b], t.size[a:b], strict=True)) for t, a, b in spans)
        _extend(video, v, s, e, durs, cursor - lo)
        for track, k0, k1 in spans[1:]:
            assert audio is not None
            _extend(audio, track, k0, k1, _durations(track, k0, k1), cursor - lo)
        pieces.append(Piece(src.path, lo, hi - lo))
        cursor += hi - lo
        decoded += span
    if audio is not None and tail is not None:
        cursor += _audio_tail(audio, tail, first, decoded / vts, audio_at, pieces, cursor)
    _finish_video(video)
    if audio is not None:
        audio.edit_length = max(0, sum(audio.dur) - audio.edit_media)
    return Selection(video, audio, tuple(pieces), cursor)


def _audio_tail(
    audio: OutTrack, tail: Source, first: Movie, video_end: float, audio_at: float, pieces: list[Piece], cursor: int
) -> int:
    """Append the next segment's leading audio samples that fall before the clip's video end; returns the bytes
    added. Anything unusual about the next segment (another description, a gap, no audio) leaves the clip as is."""
    a, v = tail.movie.audio, tail.movie.video
    if a is None or first.audio is None or v.count == 0:
        return 0
    try:
        _same_description(first.audio, a)
        _same_description(first.video, v)
        video_from = (v.dts[0] + v.cts[0] - v.edit) / v.timescale + v.delay
        k, end, _ = _audio_range(a, video_from, video_end, video_end, audio_at, first=False)
    except Unsupported:
        return 0
    if end <= k:
        return 0
    lo = min(a.offset[k:end])
    hi = max(o + z for o, z in zip(a.offset[k:end], a.size[k:end], strict=True))
    _extend(audio, a, k, end, _durations(a, k, end), cursor - lo)
    pieces.append(Piece(tail.path, lo, hi - lo))
    return hi - lo


def _empty() -> tuple[array, array, array, array, array]:
    return array("q"), array("q"), array("q"), array("q"), array("B")


def _video_range(src: Source, *, require_key: bool) -> tuple[int, int]:
    v = src.movie.video
    ts = v.timescale
    s = 0
    if src.inpoint is not None:
        # The planner's inpoint is the keyframe's presentation time as FFmpeg reports it (edit list applied).
        target = round((src.inpoint - v.delay) * ts) + v.edit
        half = max(1, min(v.dur[:16]) // 2) if v.count else 1
        matches = [k for k in range(v.count) if v.sync[k] and abs(v.dts[k] + v.cts[k] - target) <= half]
        if not matches:
            raise Unsupported("keyframe", f"{src.path.name}: no sync sample at {src.inpoint:.6f} s")
        s = matches[0]
    elif require_key and not v.sync[0]:
        raise Unsupported("keyframe", f"{src.path.name} does not start with a sync sample")
    e = v.count
    if src.outpoint is not None:
        # concat drops packets whose dts (edit list applied) is at or past outpoint, compared exactly in microseconds.
        limit_us = int(Decimal(f"{src.outpoint:.6f}") * 1_000_000)
        e = s
        shift = v.edit - round(v.delay * ts)
        while e < v.count and (v.dts[e] - shift) * 1_000_000 < limit_us * ts:
            e += 1
    if e <= s:
        raise Unsupported("timing", f"{src.path.name}: no video sample in the window")
    return s, e


def _audio_range(
    a: Track, video_from: float, out_from: float, out_to: float, out_at: float, *, first: bool
) -> tuple[int, int, int]:
    """(first sample, end sample, media time to skip) of the audio that goes with one segment's video span."""
    ats = a.timescale

    def out_start(k: int) -> float:  # where sample k would land on the output timeline
        return (a.dts[k] - a.edit) / ats + a.delay - video_from + out_from

    if a.count == 0:
        return 0, 0, 0
    skip = 0
    if first:
        k = max(0, bisect.bisect_right(a.dts, round((video_from - a.delay) * ats) + a.edit) - 1)
        if out_start(k) > out_from + a.dur[k] / ats:
            raise Unsupported("timing", "the audio starts more than a frame after the video")
        skip = max(0, round((out_from - out_start(k)) * ats))
    else:
        k = 0
        while k < a.count and out_start(k) < out_at - a.dur[k] / ats / 2:
            k += 1
        if k < a.count and abs(out_start(k) - out_at) > a.dur[k] / ats:
            raise Unsupported("timing", "the audio of consecutive segments does not join within a frame")
    end = k
    while end < a.count and out_start(end) + a.dur[end] / ats / 2 < out_to:
        end += 1
    if first and end == k:
        end = k + 1
    return k, end, skip


def _durations(t: Track, s: int, e: int) -> array:
    """Decode durations from decode times (a fragment's tfdt may move them), the last one from its own duration."""
    d = array("q", (b - a for a, b in zip(t.dts[s : e - 1], t.dts[s + 1 : e], strict=True)))
    d.append(t.dur[e - 1])
    return d


def _extend(out: OutTrack, t: Track, s: int, e: int, durs: array, shift: int) -> None:
    out.dur.extend(durs)
    out.cts.extend(t.cts[s:e])
    out.size.extend(t.size[s:e])
    out.rel.extend(array("q", (o + shift for o in t.offset[s:e])))
    out.sync.extend(t.sync[s:e])


def _finish_video(video: OutTrack) -> None:
    dts = 0
    lo = hi = None
    for d, c in zip(video.dur, video.cts, strict=True):
        lo = dts + c if lo is None else min(lo, dts + c)
        hi = dts + c + d if hi is None else max(hi, dts + c + d)
        dts += d
    assert lo is not None and hi is not None
    if lo != video.edit_media:
        raise Unsupported("keyframe", "a frame is shown before the first keyframe (open GOP)")
    video.edit_length = hi - lo


def _checked_entry(track: Track, allowed: set[bytes]) -> bytes:
    if track.entry not in allowed:
        raise Unsupported("codec", f"sample entry {track.entry!r} is not cut at the box level")
    return track.stsd


def _same_description(a: Track, b: Track) -> None:
    if a.timescale != b.timescale or _normalised(a.stsd) != _normalised(b.stsd):
        raise Unsupported("sample_description", f"{a.kind} sample descriptions or timescales differ")


def _normalised(stsd: bytes) -> bytes:
    """The sample description with its bitrate fields zeroed: recorders rewrite them per file."""
    out = bytearray(stsd)
    at = out.find(b"btrt")
    if at > 0:
        out[at + 4 : at + 16] = bytes(12)
    at = out.find(b"esds")
    if at > 0:
        p = at + 8  # past the full box header
        if out[p] == 0x03:  # ES_Descriptor: tag, length, ES_ID, flags, optional fields
            p = _after_length(out, p + 1)
            flags = out[p + 2]
            p += 3 + (2 if flags & 0x80 else 0) + (1 + out[p + 3] if flags & 0x40 else 0) + (2 if flags & 0x20 else 0)
        if p < len(out) and out[p] == 0x04:  # DecoderConfigDescriptor: type, stream, buffer size, max, avg
            p = _after_length(out, p + 1)
            out[p + 2 : p + 13] = bytes(11)
    return bytes(out)


def _after_length(buf: bytearray, p: int) -> int:
    for _ in range(4):
        more = buf[p] & 0x80
        p += 1
        if not more:
            break
    return p


def _hvc1(stsd: bytes) -> bytes:
    """hev1 becomes hvc1 with its parameter set arrays marked complete, as FFmpeg's `-tag:v hvc1` writes it."""
    if stsd[20:24] != b"hev1":
        return stsd
    out = bytearray(stsd)
    out[20:24] = b"hvc1"
    entry_payload = 16 + 8 + 78  # stsd header, entry header, visual sample entry fields
    found = set()
    for kind, s, _e in iter_boxes(out, entry_payload, len(out)):
        if kind != b"hvcC":
            continue
        p = s + 23
        for _ in range(out[s + 22]):
            out[p] |= 0x80
            found.add(out[p] & 0x3F)
            count = struct.unpack_from(">H", out, p + 1)[0]
            p += 3
            for _ in range(count):
                p += 2 + struct.unpack_from(">H", out, p)[0]
    if not {32, 33, 34} <= found:
        raise Unsupported("codec", "hev1 without VPS/SPS/PPS in its hvcC")
    return bytes(out)
