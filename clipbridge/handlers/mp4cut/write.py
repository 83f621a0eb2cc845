"""Write the clip: ftyp, one new moov (faststart in one pass), then an mdat filled file to file with copy_file_range."""

from __future__ import annotations

import errno
import logging
import os
import struct
import sys
from array import array
from pathlib import Path

from clipbridge.handlers.mp4cut.reasons import Unsupported
from clipbridge.handlers.mp4cut.select import OutTrack, Piece, Selection

logger = logging.getLogger(__name__)

MOVIE_TIMESCALE = 1000  # as FFmpeg writes it; edit list lengths are in this unit
_U32 = 0xFFFFFFFF
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_NO_ZERO_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def box(kind: bytes, *parts: bytes) -> bytes:
    size = 8 + sum(len(p) for p in parts)
    return struct.pack(">I4s", size, kind) + b"".join(parts)


def full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _be(a: array, code: str) -> bytes:
    out = array(code, a)
    if sys.byteorder == "little":
        out.byteswap()
    return out.tobytes()


def _ftyp(video_entry: bytes) -> bytes:
    brands = [b"isom", b"iso2", b"avc1" if video_entry.startswith(b"avc") else b"hvc1", b"mp41"]
    return box(b"ftyp", b"isom", struct.pack(">I", 512), *brands)


def _movie_units(value: int, timescale: int) -> int:
    return (value * MOVIE_TIMESCALE + timescale // 2) // timescale


def _stts(dur: array) -> bytes:
    runs: list[list[int]] = []
    for d in dur:
        if runs and runs[-1][1] == d:
            runs[-1][0] += 1
        else:
            runs.append([1, d])
    return full(b"stts", 0, 0, struct.pack(">I", len(runs)), *(struct.pack(">II", c, d) for c, d in runs))


def _ctts(cts: array) -> bytes:
    runs: list[list[int]] = []
    for c in cts:
        if runs and runs[-1][1] == c:
            runs[-1][0] += 1
        else:
            runs.append([1, c])
    version = 1 if any(c < 0 for _, c in runs) else 0
    fmt = ">Ii" if version else ">II"
    return full(b"ctts", version, 0, struct.pack(">I", len(runs)), *(struct.pack(fmt, n, c) for n, c in runs))


def chunks(rel: array, size: array) -> tuple[list[int], list[int]]:
    """Runs of samples that follow each other in the mdat: (chunk offsets, samples per chunk)."""
    starts: list[int] = []
    counts: list[int] = []
    end = -1
    for o, z in zip(rel, size, strict=True):
        if o == end:
            counts[-1] += 1
        else:
            starts.append(o)
            counts.append(1)
        end = o + z
    return starts, counts


def _stbl(t: OutTrack, base: int, wide: bool) -> bytes:
    starts, counts = chunks(t.rel, t.size)
    stsc_runs: list[tuple[int, int]] = []
    for i, c in enumerate(counts):
        if not stsc_runs or stsc_runs[-1][1] != c:
            stsc_runs.append((i + 1, c))
    offsets = array("q", (base + s for s in starts))
    parts = [t.stsd, _stts(t.dur)]
    if any(t.cts):
        parts.append(_ctts(t.cts))
    if not all(t.sync):
        numbers = array("q", (i + 1 for i, s in enumerate(t.sync) if s))
        parts.append(full(b"stss", 0, 0, struct.pack(">I", len(numbers)), _be(numbers, "I")))
    parts.append(full(b"stsz", 0, 0, struct.pack(">II", 0, len(t.size)), _be(t.size, "I")))
    parts.append(
        full(b"stsc", 0, 0, struct.pack(">I", len(stsc_runs)), *(struct.pack(">III", f, c, 1) for f, c in stsc_runs))
    )
    if wide:
        parts.append(full(b"co64", 0, 0, struct.pack(">I", len(offsets)), _be(offsets, "Q")))
    else:
        parts.append(full(b"stco", 0, 0, struct.pack(">I", len(offsets)), _be(offsets, "I")))
    return box(b"stbl", *parts)


def _trak(t: OutTrack, track_id: int, base: int, wide: bool) -> bytes:
    ts = t.template.timescale
    length = _movie_units(t.edit_length, ts)
    audio = t.template.kind == "soun"
    tkhd = full(
        b"tkhd",
        0,
        3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, track_id, 0, length),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0x100 if audio else 0, 0),
        _MATRIX,
        t.template.size_wh,
    )
    elst = full(b"elst", 0, 0, struct.pack(">IIiI", 1, length, t.edit_media, 0x10000))
    mdhd = full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, ts, sum(t.dur), t.template.language, 0))
    dinf = box(b"dinf", full(b"dref", 0, 0, struct.pack(">I", 1), full(b"url ", 0, 1)))
    header = t.template.media_header or (full(b"smhd", 0, 0, bytes(4)) if audio else full(b"vmhd", 0, 1, bytes(8)))
    minf = box(b"minf", header, dinf, _stbl(t, base, wide))
    return box(b"trak", tkhd, box(b"edts", elst), box(b"mdia", mdhd, t.template.hdlr, minf))


def build_moov(sel: Selection, base: int, *, wide: bool) -> bytes:
    tracks = [sel.video] + ([sel.audio] if sel.audio is not None else [])
    duration = max(_movie_units(t.edit_length, t.template.timescale) for t in tracks)
    mvhd = full(
        b"mvhd",
        0,
        0,
        struct.pack(">IIIIIH", 0, 0, MOVIE_TIMESCALE, duration, 0x10000, 0x100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", len(tracks) + 1),
    )
    return box(b"moov", mvhd, *(_trak(t, i + 1, base, wide) for i, t in enumerate(tracks)))


def layout(sel: Selection) -> tuple[bytes, bytes]:
    """(ftyp + moov, mdat header): chunk offsets become 64-bit only when the data passes 4 GiB."""
    ftyp = _ftyp(sel.video.stsd[20:24])
    large = sel.data_size + 8 > _U32
    mdat_head = (
        struct.pack(">I4sQ", 1, b"mdat", sel.data_size + 16)
        if large
        else struct.pack(">I4s", sel.data_size + 8, b"mdat")
    )
    for wide in (False, True):
        try:  # 32-bit stco unless an offset does not fit; the moov's length does not depend on the offsets
            base = len(ftyp) + len(build_moov(sel, 0, wide=wide)) + len(mdat_head)
            return ftyp + build_moov(sel, base, wide=wide), mdat_head
        except OverflowError:
            if wide:
                raise
    raise AssertionError("unreachable")


def write_clip(sel: Selection, output: Path) -> int:
    """Write the clip to `output`; returns its size. Source bytes are copied kernel-side where the OS allows."""
    head, mdat_head = layout(sel)
    with open(output, "wb") as out:
        out.write(head + mdat_head)
        out.flush()
        pos = len(head) + len(mdat_head)
        for piece in sel.pieces:
            pos += _copy(piece, out.fileno(), pos)
    expected = len(head) + len(mdat_head) + sel.data_size
    if pos != expected:
        raise OSError(errno.EIO, f"wrote {pos} bytes of {expected}")
    return pos


def _copy(piece: Piece, dst: int, at: int) -> int:
    """Copy one byte range; copy_file_range, or read/write where it is missing or refused (e.g. across file systems
    on kernels before 5.19, or file systems without it)."""
    with open(piece.path, "rb") as src:
        done = 0
        zero_copy = hasattr(os, "copy_file_range")
        while zero_copy and done < piece.length:
            try:
                n = os.copy_file_range(src.fileno(), dst, piece.length - done, piece.start + done, at + done)
            except OSError as exc:
                if exc.errno not in _NO_ZERO_COPY:
                    raise
                logger.debug("copy_file_range refused (%s): copying through user space", exc.strerror)
                break
            if n == 0:
                raise Unsupported("unparseable", f"{piece.path.name} ended early (it shrank while being cut)")
            done += n
        while done < piece.length:
            data = os.pread(src.fileno(), min(1 << 20, piece.length - done), piece.start + done)
            if not data:
                raise Unsupported("unparseable", f"{piece.path.name} ended early (it shrank while being cut)")
            os.pwrite(dst, data, at + done)
            done += len(data)
    return done
