"""Read ISO BMFF (MP4) sample tables into packed arrays: progressive `moov`/`stbl`, or fragmented `moof`/`trun`.

Only what a clip needs is read: the first video and the first audio track, their sample descriptions, timing, sizes,
file offsets and sync flags. Anything unexpected raises `Unsupported`, and the clip goes to FFmpeg instead.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from clipbridge.handlers.mp4cut.reasons import Unsupported

_LITTLE = sys.byteorder == "little"
_NON_SYNC = 0x10000  # sample_is_non_sync_sample in ISO BMFF sample flags


@dataclass(frozen=True)
class Track:
    kind: str  # "vide" or "soun"
    timescale: int
    stsd: bytes  # the whole stsd box, as found
    hdlr: bytes  # the whole hdlr box
    media_header: bytes  # the whole vmhd or smhd box
    language: int  # mdhd's packed ISO 639-2 code
    size_wh: bytes  # tkhd width and height (16.16 fixed), 8 bytes
    edit: int  # media time where presentation starts (first non-empty edit; 0 without an edit list)
    delay: float  # seconds of an empty edit before it (a track that starts late), else 0
    dts: array  # 'q', decode time of each sample
    dur: array  # 'q', duration of each sample
    cts: array  # 'q', composition offset of each sample
    size: array  # 'q', byte size of each sample
    offset: array  # 'q', file offset of each sample
    sync: array  # 'B', 1 where the sample is a sync sample

    @property
    def count(self) -> int:
        return len(self.size)

    @property
    def entry(self) -> bytes:
        """The sample entry's fourcc (avc1, hvc1, hev1, mp4a, ...)."""
        return self.stsd[20:24]


@dataclass(frozen=True)
class Movie:
    video: Track
    audio: Track | None
    fragmented: bool


def _u32(data: bytes | memoryview, pos: int) -> int:
    return int(struct.unpack_from(">I", data, pos)[0])


def iter_boxes(
    data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes between start and end."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise Unsupported("unparseable", "truncated box header")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise Unsupported("unparseable", f"box {kind!r} overruns its parent")
        yield kind, pos + head, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in iter_boxes(data, start, end):
        if k == kind:
            return s, e
    return None


def _need(data: bytes, span: tuple[int, int] | None, path: str, kind: bytes) -> tuple[int, int]:
    found = None if span is None else _child(data, span[0], span[1], kind)
    if found is None:
        raise Unsupported("unparseable", f"no {path}/{kind.decode('latin-1')} box")
    return found


def _be(code: str, data: bytes | memoryview) -> array:
    a = array(code, data)
    if _LITTLE:
        a.byteswap()
    return a


def _q(values: array | list[int]) -> array:
    return array("q", values)


def _top_level(fd: int, size: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of the top-level boxes; stops at a box that runs past the end."""
    pos = 0
    while pos + 8 <= size:
        head = os.pread(fd, 16, pos)
        box, kind = struct.unpack_from(">I4s", head)
        hlen = 8
        if box == 1 and len(head) == 16:
            box, hlen = struct.unpack_from(">Q", head, 8)[0], 16
        elif box == 0:
            box = size - pos
        if box < hlen:
            raise Unsupported("unparseable", f"bad top-level box {kind!r} at {pos}")
        if pos + box > size:
            return  # still being written (or truncated): the caller decides
        yield kind, pos, pos + hlen, pos + box
        pos += box


def read_movie(path: Path) -> Movie:
    """The sample tables of one MP4 or fMP4 file; a growing fMP4 yields its complete fragments."""
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        moov: bytes | None = None
        moofs: list[tuple[int, bytes]] = []
        first = True
        for kind, start, _payload, end in _top_level(fd, size):
            if first and kind not in (b"ftyp", b"styp", b"moov", b"free", b"skip", b"wide"):
                raise Unsupported("not_mp4", f"{path.name} does not start with an MP4 box")
            first = False
            if kind == b"moov":
                moov = os.pread(fd, end - start, start)
            elif kind == b"moof":
                moofs.append((start, os.pread(fd, end - start, start)))
        if moov is None:
            if first:
                raise Unsupported("not_mp4", f"{path.name} is empty")
            raise Unsupported("unparseable", f"{path.name} has no complete moov box")
    return _parse_moov(moov, moofs, size)


def _parse_moov(moov: bytes, moofs: list[tuple[int, bytes]], file_size: int) -> Movie:
    fragmented = _child(moov, 8, len(moov), b"mvex") is not None
    mvhd = _need(moov, (8, len(moov)), "moov", b"mvhd")
    movie_timescale = _u32(moov, mvhd[0] + (20 if moov[mvhd[0]] == 1 else 12)) or 1
    defaults: dict[int, tuple[int, int, int]] = {}  # track id -> trex default duration, size, flags
    if fragmented:
        mvex = _need(moov, (8, len(moov)), "moov", b"mvex")
        for k, s, _e in iter_boxes(moov, *mvex):
            if k == b"trex":
                tid, _sdi, ddur, dsize, dflags = struct.unpack_from(">5I", moov, s + 4)
                defaults[tid] = (ddur, dsize, dflags)
    video = audio = None
    for kind, s, e in iter_boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        track_id, handler, track = _parse_trak(moov, s, e, fragmented, movie_timescale)
        if handler == b"vide" and video is None:
            video = (track_id, track)
        elif handler == b"soun" and audio is None:
            audio = (track_id, track)
    if video is None:
        raise Unsupported("unparseable", "no video track")
    if fragmented:
        wanted = {video[0]} | ({audio[0]} if audio is not None else set())
        frag = _fragments(moofs, wanted, defaults, file_size)
        video = (video[0], _with_samples(video[1], frag.get(video[0])))
        if audio is not None:
            audio = (audio[0], _with_samples(audio[1], frag.get(audio[0])))
    if video[1].count == 0:
        raise Unsupported("unparseable", "the video track has no samples")
    return Movie(video[1], audio[1] if audio else None, fragmented)


def _parse_trak(moov: bytes, start: int, end: int, fragmented: bool, movie_timescale: int) -> tuple[int, bytes, Track]:
    tkhd = _need(moov, (start, end), "trak", b"tkhd")
    version = moov[tkhd[0]]
    track_id = _u32(moov, tkhd[0] + (20 if version == 1 else 12))
    mdia = _need(moov, (start, end), "trak", b"mdia")
    mdhd = _need(moov, mdia, "mdia", b"mdhd")
    mv = moov[mdhd[0]]
    timescale = _u32(moov, mdhd[0] + (20 if mv == 1 else 12))
    language = struct.unpack_from(">H", moov, mdhd[0] + (32 if mv == 1 else 20))[0]
    hdlr = _need(moov, mdia, "mdia", b"hdlr")
    handler = bytes(moov[hdlr[0] + 8 : hdlr[0] + 12])
    minf = _need(moov, mdia, "mdia", b"minf")
    stbl = _need(moov, minf, "minf", b"stbl")
    header = _child(moov, *minf, b"vmhd") or _child(moov, *minf, b"smhd")
    tables = {k: (s, e) for k, s, e in iter_boxes(moov, *stbl)}
    if b"stsd" not in tables:
        raise Unsupported("unparseable", "no stsd box")
    stsd_s, stsd_e = tables[b"stsd"]
    if _u32(moov, stsd_s + 4) != 1:
        raise Unsupported("sample_description", "more than one sample description in a track")
    samples = _stbl_samples(moov, tables)
    edit, empty = _edit_start(moov, start, end)
    if fragmented and samples[0]:
        raise Unsupported("unparseable", "fragmented file with samples in moov")
    track = Track(
        kind=handler.decode("latin-1"),
        timescale=timescale,
        stsd=bytes(moov[stsd_s - 8 : stsd_e]),
        hdlr=bytes(moov[hdlr[0] - 8 : hdlr[1]]),
        media_header=b"" if header is None else bytes(moov[header[0] - 8 : header[1]]),
        language=language,
        size_wh=bytes(moov[tkhd[1] - 8 : tkhd[1]]),
        edit=edit,
        delay=empty / movie_timescale,
        dts=samples[1],
        dur=samples[2],
        cts=samples[3],
        size=samples[4],
        offset=samples[5],
        sync=samples[6],
    )
    return track_id, handler, track


def _edit_start(moov: bytes, start: int, end: int) -> tuple[int, int]:
    """(media time presentation starts at, length of a leading empty edit in the movie timescale)."""
    edts = _child(moov, start, end, b"edts")
    elst = None if edts is None else _child(moov, *edts, b"elst")
    if elst is None:
        return 0, 0
    version, count = moov[elst[0]], _u32(moov, elst[0] + 4)
    step, fmt = (20, ">Qq") if version == 1 else (12, ">Ii")
    entries = [struct.unpack_from(fmt, moov, elst[0] + 8 + i * step) for i in range(count)]
    empty = 0
    if len(entries) == 2 and entries[0][1] == -1:  # a track that starts late (FFmpeg writes it at a stream's start)
        empty = int(entries[0][0])
        entries = entries[1:]
    if len(entries) != 1 or entries[0][1] < 0:
        # Multi-part edits are real but rare in recorder output: FFmpeg handles them.
        raise Unsupported("edit_list", f"edit list with {count} entries")
    return int(entries[0][1]), empty


def _stbl_samples(moov: bytes, t: dict[bytes, tuple[int, int]]) -> tuple[int, array, array, array, array, array, array]:
    # stts: (count, delta) runs
    s = t[b"stts"][0]
    dur = array("q")
    for i in range(_u32(moov, s + 4)):
        count, delta = struct.unpack_from(">II", moov, s + 8 + 8 * i)
        dur.extend(array("q", [delta]) * count)
    n = len(dur)
    sizes = _sizes(moov, t, n)
    cts = array("q", bytes(8 * n))
    if b"ctts" in t:
        s = t[b"ctts"][0]
        fmt = ">Ii" if moov[s] == 1 else ">II"
        cts = array("q")
        for i in range(_u32(moov, s + 4)):
            count, off = struct.unpack_from(fmt, moov, s + 8 + 8 * i)
            cts.extend(array("q", [off]) * count)
    sync = array("B", b"\x01" * n)
    if b"stss" in t:
        s = t[b"stss"][0]
        sync = array("B", bytes(n))
        for number in _be("I", moov[s + 8 : s + 8 + 4 * _u32(moov, s + 4)]):
            if 1 <= number <= n:
                sync[number - 1] = 1
    offsets = _offsets(moov, t, sizes)
    if not (len(sizes) == len(cts) == len(offsets) == n):
        raise Unsupported("unparseable", "sample tables disagree on the sample count")
    dts = array("q", accumulate(dur, initial=0))
    dts.pop()
    return n, dts, dur, cts, sizes, offsets, sync


def _sizes(moov: bytes, t: dict[bytes, tuple[int, int]], n: int) -> array:
    if b"stsz" in t:
        s = t[b"stsz"][0]
        fixed, count = struct.unpack_from(">II", moov, s + 4)
        if fixed:
            return array("q", [fixed]) * count
        return array("q", _be("I", moov[s + 12 : s + 12 + 4 * count]))
    if b"stz2" in t:
        s = t[b"stz2"][0]
        field, count = moov[s + 7], _u32(moov, s + 8)
        raw = moov[s + 12 :]
        if field == 16:
            return array("q", _be("H", raw[: 2 * count]))
        if field == 8:
            return array("q", raw[:count])
        if field == 4:
            nibbles = [v for b in raw[: (count + 1) // 2] for v in (b >> 4, b & 15)]
            return array("q", nibbles[:count])
    if n == 0:
        return array("q")
    raise Unsupported("unparseable", "no sample size table")


def _offsets(moov: bytes, t: dict[bytes, tuple[int, int]], sizes: array) -> array:
    if b"stco" in t:
        s = t[b"stco"][0]
        chunks = _be("I", moov[s + 8 : s + 8 + 4 * _u32(moov, s + 4)])
    elif b"co64" in t:
        s = t[b"co64"][0]
        chunks = _be("Q", moov[s + 8 : s + 8 + 8 * _u32(moov, s + 4)])
    elif not sizes:
        return array("q")
    else:
        raise Unsupported("unparseable", "no chunk offset table")
    s = t[b"stsc"][0]
    runs = [struct.unpack_from(">III", moov, s + 8 + 12 * i) for i in range(_u32(moov, s + 4))]
    offsets = array("q")
    k = 0
    for r, (first, per_chunk, _sdi) in enumerate(runs):
        last = runs[r + 1][0] - 1 if r + 1 < len(runs) else len(chunks)
        for chunk in range(first - 1, last):
            pos = chunks[chunk]
            for size in sizes[k : k + per_chunk]:
                offsets.append(pos)
                pos += size
            k += per_chunk
    return offsets


def _with_samples(track: Track, samples: tuple[array, ...] | None) -> Track:
    if samples is None:
        raise Unsupported("unparseable", "a track has no complete fragment")
    dts, dur, cts, size, offset, sync = samples
    return Track(**{**track.__dict__, "dts": dts, "dur": dur, "cts": cts, "size": size, "offset": offset, "sync": sync})


def _fragments(
    moofs: list[tuple[int, bytes]], wanted: set[int], defaults: dict[int, tuple[int, int, int]], file_size: int
) -> dict[int, tuple[array, ...]]:
    """Per track: dts, dur, cts, size, offset, sync of every sample in complete fragments (data within the file)."""
    out: dict[int, list[list[int]]] = {}
    for moof_start, moof in moofs:
        frag: dict[int, list[list[int]]] = {}
        complete = True
        for k, s, e in iter_boxes(moof, 8, len(moof)):
            if k != b"traf":
                continue
            tid, rows = _traf(moof, s, e, moof_start, defaults)
            if tid in wanted and rows[0]:
                if max(o + z for o, z in zip(rows[4], rows[3], strict=True)) > file_size:
                    complete = False
                frag[tid] = rows
        if not complete:
            break  # the part being written: only whole fragments are cut
        for tid, rows in frag.items():
            cols = out.setdefault(tid, [[] for _ in range(6)])
            for col, values in zip(cols, rows, strict=True):
                col.extend(values)
    return {tid: (_q(c[0]), _q(c[1]), _q(c[2]), _q(c[3]), _q(c[4]), array("B", c[5])) for tid, c in out.items()}


_TRUN_FIELDS = ((0x100, "dur"), (0x200, "size"), (0x400, "flags"), (0x800, "cts"))


def _traf(
    moof: bytes, start: int, end: int, moof_start: int, defaults: dict[int, tuple[int, int, int]]
) -> tuple[int, list[list[int]]]:
    tfhd = _need(moof, (start, end), "traf", b"tfhd")
    flags = _u32(moof, tfhd[0]) & 0xFFFFFF
    tid = _u32(moof, tfhd[0] + 4)
    ddur, dsize, dflags = defaults.get(tid, (0, 0, 0))
    pos = tfhd[0] + 8
    base = moof_start
    if flags & 0x1:
        base = struct.unpack_from(">Q", moof, pos)[0]
        pos += 8
    if flags & 0x2:
        pos += 4
    if flags & 0x8:
        ddur = _u32(moof, pos)
        pos += 4
    if flags & 0x10:
        dsize = _u32(moof, pos)
        pos += 4
    if flags & 0x20:
        dflags = _u32(moof, pos)
    tfdt = _child(moof, start, end, b"tfdt")
    decode = 0
    if tfdt is not None:
        decode = struct.unpack_from(">Q" if moof[tfdt[0]] == 1 else ">I", moof, tfdt[0] + 4)[0]
    rows: list[list[int]] = [[] for _ in range(6)]  # dts, dur, cts, size, offset, sync
    data = base
    for k, s, _e in iter_boxes(moof, start, end):
        if k != b"trun":
            continue
        version, tflags, count = moof[s], _u32(moof, s) & 0xFFFFFF, _u32(moof, s + 4)
        p = s + 8
        if tflags & 0x1:
            data = base + struct.unpack_from(">i", moof, p)[0]
            p += 4
        first_flags = None
        if tflags & 0x4:
            first_flags = _u32(moof, p)
            p += 4
        present = [name for bit, name in _TRUN_FIELDS if tflags & bit]
        fmt = ">" + "".join("i" if (n == "cts" and version == 1) else "I" for n in present)
        for i, row in enumerate(struct.iter_unpack(fmt, moof[p : p + 4 * len(present) * count]) if present else []):
            values = dict(zip(present, row, strict=True))
            _append(rows, values, i, first_flags, decode, data, ddur, dsize, dflags)
            decode += rows[1][-1]
            data += rows[3][-1]
        if not present:
            for i in range(count):
                _append(rows, {}, i, first_flags, decode, data, ddur, dsize, dflags)
                decode += ddur
                data += dsize
    return tid, rows


def _append(
    rows: list[list[int]],
    v: dict[str, int | None],
    i: int,
    first_flags: int | None,
    decode: int,
    data: int,
    ddur: int,
    dsize: int,
    dflags: int,
) -> None:
    flags = v.get("flags")
    if flags is None:
        flags = first_flags if (i == 0 and first_flags is not None) else dflags
    rows[0].append(decode)
    rows[1].append(v.get("dur") or ddur)
    rows[2].append(v.get("cts") or 0)
    rows[3].append(v.get("size") or dsize)
    rows[4].append(data)
    rows[5].append(0 if flags & _NON_SYNC else 1)
