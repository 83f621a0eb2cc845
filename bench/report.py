"""The results as markdown tables (bench/results/<date>.md and stdout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.common import (
    TARGET_BURST_VS_IDEAL,
    TARGET_CLIP_CAT_RATIO,
    TARGET_CLIP_RATIO,
    TARGET_E2E_CAT_MARGIN_MS,
    TARGET_E2E_MARGIN_MS,
    TARGET_INTAKE_RATE,
    TARGET_LIVE_P95_MS,
)

# -- report -------------------------------------------------------------------------------------------------------


def _yes(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**not met**")


def _ms(s: dict[str, float], keys: Sequence[str] = ("median_ms", "p95_ms")) -> str:
    names = {"median_ms": "median", "p95_ms": "p95", "p99_ms": "p99"}
    return ", ".join(f"{names[k]} {s[k]:.1f} ms" for k in keys)


def _was(base: dict[str, Any] | None, path: str, fmt: str, unit: str = "") -> str:
    """The baseline's figure at `path` (dot-separated keys), as " (baseline ...)"; empty when it did not measure it."""
    value: Any = (base or {}).get("sections", {})
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return ""
        value = value[key]
    return f" (baseline {format(value, fmt)}{unit})"


def report(results: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    m = results["machine"]
    lines = [f"## clipbridge benchmark, {results['date']} ({'quick' if results['quick'] else 'full'} run)", ""]
    lines += ["| machine | |", "| --- | --- |"]
    lines.append(f"| CPU | {m['cpu_model']}, nproc {m['nproc']}, {m['mem_gb']} GB RAM |")
    lines.append(f"| OS / Python | Linux {m['kernel']}, Python {m['python']} |")
    code = results.get("code")
    if code:
        dirty = code["uncommitted_outside_bench"]
        extra = f" + uncommitted changes to {', '.join(dirty)}" if dirty else ", clean"
        lines.append(f"| code | commit {code['head']}{extra} |")
    lines.append(f"| FFmpeg (bundled, imageio-ffmpeg) | {m['ffmpeg_bundled']['version']} |")
    debian = m["ffmpeg_debian"]
    lines.append(f"| FFmpeg (Debian) | {debian['version'] if debian else 'not installed'} |")
    broker = results.get("broker_config")
    if broker:
        effective = {line.split()[0]: line for line in broker if line.strip()}  # mosquitto: the last line wins
        skip = ("log_", "listener", "persistence_location", "user")
        settings = ", ".join(v for k, v in effective.items() if not k.startswith(skip))
        lines.append(f"| broker | {m['mosquitto']}; tests.harness.Broker + mosquitto/dev.conf: {settings} |")
    else:
        lines.append(f"| broker | {m['mosquitto']} (not started) |")
    fx = results.get("footage", {})
    if fx:
        lines.append(f"| footage | {fx['description']}; generated in {fx['generate_s']:.1f} s |")
    lines.append(
        f"| load average | {' / '.join(map(str, m['loadavg_at_start']))} at start,"
        f" {' / '.join(map(str, results['loadavg_at_end']))} at end (other test suites share the machine) |"
    )
    lines += ["", "| # | measurement | result | runs | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    s = results.get("sections", {})
    if "clip_cost" in s:
        c = s["clip_cost"]
        n = c["clipbridge_warm"]["n"]
        lines.append(f"| 1 | bare `ffmpeg -f concat -c copy`, bundled | {_ms(c['bare_bundled'])} | {n} | | |")
        lines.append(
            f"| 1 | clipbridge `make_clip`, warm probe cache, box path | {_ms(c['clipbridge_warm'])};"
            f" **{c['ratio_warm']:.2f}x** bare{_was(base, 'clip_cost.ratio_warm', '.2f', 'x')} | {n} | <= {TARGET_CLIP_RATIO:.2f}x |"
            f" {_yes(c['ratio_warm'] <= TARGET_CLIP_RATIO)} |"
        )
        if "ratio_warm_to_cat" in c:
            lines.append(
                f"| 1 | ... the same against `cat` | **{c['ratio_warm_to_cat']:.2f}x** `cat` | {n} |"
                f" <= {TARGET_CLIP_CAT_RATIO:.2f}x | {_yes(c['ratio_warm_to_cat'] <= TARGET_CLIP_CAT_RATIO)} |"
            )
            lines.append(
                f"| 1 | clipbridge `make_clip`, warm, FFmpeg path (`clips.cutter: ffmpeg`) |"
                f" {_ms(c['clipbridge_ffmpeg_path_warm'])}; {c['ratio_ffmpeg_path_warm']:.2f}x bare | {n} | | |"
            )
            kinds = "; ".join(f"{k}: {v}" for k, v in c["path_by_kind"].items())
            lines.append(f"| 1 | path taken by footage kind (seed window) | {kinds} | 1 each | | |")
        if "snapshot_pyav" in c:
            lines.append(
                f"| 1 | snapshot at the incident, 1080p to 640 px JPEG: PyAV in-process (used) at a keyframe / at the"
                f" GOP's last frame; one FFmpeg run | {_ms(c['snapshot_pyav'])} / {_ms(c['snapshot_pyav_gop_end'])};"
                f" FFmpeg {_ms(c['snapshot_ffmpeg'])}; cut alone (snapshot off) {_ms(c['clipbridge_warm_no_snapshot'])}:"
                f" snapshot **{c['snapshot_vs_cut']:.2f}x** the cut | {n} | <= 0.33x the cut |"
                f" {_yes(c['snapshot_vs_cut'] <= 0.34)} |"
            )
        lines.append(
            f"| 1 | informational: FFmpeg alone with clipbridge's argv minus `-movflags +faststart` |"
            f" {_ms(c['ffmpeg_no_faststart'])}; {c['ratio_no_faststart']:.2f}x bare | {n} | | |"
        )
        lines.append(
            f"| 1 | clipbridge `make_clip`, cold probe cache | {_ms(c['clipbridge_cold'])};"
            f" {c['ratio_cold']:.2f}x bare | {n} | | |"
        )
        lines.append(
            f"| 1 | `cat` of the same {c['input_bytes'] / 1e6:.0f} MB (I/O floor) | {_ms(c['cat'])};"
            f" {c['ratio_cat']:.2f}x bare | {n} | | |"
        )
        if "bare_debian" in c:
            lines.append(
                f"| 1 | bare concat, Debian /usr/bin/ffmpeg | {_ms(c['bare_debian'])};"
                f" {c['ratio_debian']:.2f}x bundled | {n} | | |"
            )
        else:
            lines.append(f"| 1 | bare concat, Debian /usr/bin/ffmpeg | skipped: {c['debian_note']} | 0 | | |")
    if "e2e" in s:
        e = s["e2e"]
        lat = e["latency"]
        lines.append(
            f"| 2 | end-to-end MQTT publish -> reply | {_ms(lat, ('median_ms', 'p95_ms', 'p99_ms'))}"
            f"{_was(base, 'e2e.latency.median_ms', '.1f', ' ms p50')} | {lat['n']} |"
            f" p50 <= `cat` + {TARGET_E2E_CAT_MARGIN_MS:.0f} ms = {e.get('target_cat_ms', 0):.1f} ms"
            f" (the first round's: bare + {TARGET_E2E_MARGIN_MS:.0f} ms = {e['target_ms']:.1f} ms, {_yes(e['met'])})"
            f" | {_yes(e.get('met_cat', False))} |"
        )
        lines.append(
            f"| 2 | ... split by the service's /metrics (means) | FFmpeg {e['ffmpeg_part_mean_ms']:.1f} ms;"
            f" job (commit -> finished) {e['job_mean_ms']:.1f} ms; outside the job (MQTT both ways, intake,"
            f" outbox) {e['outside_job_mean_ms']:.1f} ms of {e['mean_ms']:.1f} ms | {lat['n']} | | |"
        )
        rej = e["rejection_rtt"]
        lines.append(f"| 2 | MQTT round trip without a clip (rejected event) | {_ms(rej)} | {rej['n']} | | |")
    if "live" in s:
        lv = s["live"]
        lat = lv["latency_from_last_segment_complete"]
        lines.append(
            f"| 3 | live: last needed segment complete -> reply | {_ms(lat)}"
            f"{_was(base, 'live.latency_from_last_segment_complete.p95_ms', '.0f', ' ms p95')} | {lat['n']} |"
            f" p95 <= {TARGET_LIVE_P95_MS:.0f} ms | {_yes(lv['met'])} |"
        )
        end = lv["latency_from_window_end"]
        lines.append(
            f"| 3 | live: window end -> reply (includes waiting for the recorder to close the segment) |"
            f" {_ms(end)}; statuses {lv['statuses']} | {end['n']} | | |"
        )
    if "burst" in s:
        b = s["burst"]
        lines.append(
            f"| 4 | burst: {b['incidents']} incidents over {b['cameras']} cameras at once | last reply after"
            f" {b['time_to_last_reply_s']:.1f} s{_was(base, 'burst.time_to_last_reply_s', '.1f', ' s')},"
            f" {b['clips_per_s']:.1f} clips/s; {b['vs_ideal']:.2f}x the ideal"
            f" {b['ideal_s']:.1f} s ({b['ideal_note']}) | {b['incidents']} | <= {TARGET_BURST_VS_IDEAL:g}x the ideal |"
            f" {_yes(b.get('met', False))} |"
        )
        lines.append(
            f"| 4 | burst CPU | service (Python) {b['service_cpu_s']:.1f} s = {b['service_cpu_ms_per_clip']:.0f}"
            f" ms/clip, FFmpeg children {b['ffmpeg_children_cpu_s']:.1f} s; FFmpeg wall per clip (mean, 2"
            f" at a time) {b['ffmpeg_wall_mean_ms']:.0f} ms; machine share"
            f" {b['all_cpu_share_of_machine'] * 100:.0f}% | {b['incidents']} | | |"
        )
    if "intake" in s:
        it = s["intake"]
        lines.append(
            f"| 5 | intake: events persisted + acknowledged | {it.get('events_per_s', 0):.0f} events/s"
            f"{_was(base, 'intake.events_per_s', '.0f', ' events/s')}"
            f" ({it['events']} in {it.get('acked_seconds', 0):.2f} s); lost {it['lost']}, jobs {it['jobs_in_store']}"
            f" | {it['events']} | >= {TARGET_INTAKE_RATE:.0f}/s, 0 lost | {_yes(it['met'])} |"
        )
        lines.append(
            f"| 5 | broker ceiling (plain paho subscriber) | {it['broker_ceiling']['per_s']:.0f} msg/s |"
            f" {it['broker_ceiling']['messages']} | | |"
        )
        if "jobs_reached_waiting_per_s" in it:
            lines.append(
                f"| 5 | worker side: all jobs reached `waiting` | {it['jobs_reached_waiting_per_s']:.0f} jobs/s"
                f" ({it['all_waiting_seconds']:.2f} s) | {it['events']} | | |"
            )
    if "index" in s:
        lines += _archive_rows(s["index"], base)
    if "scaleout" in s:
        lines += _scaleout_rows(s["scaleout"], s.get("intake"))
    if "storage" in s:
        lines += _storage_rows(s["storage"], s.get("e2e"))
    if "timeline" in s:
        t = s["timeline"]
        lines.append(
            f"| 9 | `GET /cameras/{{id}}/timeline` answer (index lookup, merge, JSON), 5 s segments, an hour missing"
            f" a day ({t['files']:,} files) | 1 day {_ms(t['day'])}; 7 days {_ms(t['week'])} | {t['day']['n']:.0f} |"
            f" 1 day <= 50 ms | {_yes(t['met'])} |"
        )
    lines += ["", *details(s)]
    return "\n".join(lines) + "\n"


def _archive_rows(a: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    """Section 6 (#11), each row beside the baseline's cold scan of 1M names (the index before #11)."""
    old = ((base or {}).get("sections", {}).get("index", {}).get("scales") or [{}])[-1]
    was = f" (baseline: {old['scan_s']:.1f} s, {old['bytes_per_segment']} B/segment)" if "scan_s" in old else ""
    t = a["targets"]
    lines = []
    for label, what in (("seed", "seed layout, 200 camera folders"), ("frigate", "Frigate hourly folders")):
        w = a[label]
        lines.append(
            f"| 6 | cold walk, {w['files']:,} empty files, {what} | {w['walk_s']:.2f} s = {w['walk_vs_floor']:.2f}x"
            f" the scandir+stat floor ({w['floor_scandir_stat_s']:.2f} s; listing alone {w['floor_list_s']:.2f} s);"
            f" {w['bytes_per_segment']} B/segment{was} | 2 | <= {t['walk_s']} s, <= {t['walk_vs_floor']}x,"
            f" <= {t['bytes_per_segment']} B | {_yes(w['met'])} |"
        )
    m = a["in_memory"]
    lines.append(
        f"| 6 | {m['segments']:,} segments in memory (from names) | {m['bytes_per_segment']} B/segment;"
        f" candidates() median {m['lookup_median_us']:.1f} us, p95 {m['lookup_p95_us']:.1f} us"
        f" ({m['segments_per_lookup']} segments each) | {m['lookups']} | <= {t['bytes_per_segment']} B,"
        f" p95 < {t['lookup_p95_us']:.0f} us | {_yes(m['met'])} |"
    )
    for watch in ("events", "poll"):
        st = a[f"steady_{watch}"]
        live = st["live"]["latency_from_last_segment_complete"]
        lines.append(
            f"| 6 | steady state, watch: {watch}: {a['seed']['files']:,} indexed, 200 cameras each +1/-1 segment per 5 s"
            f" ({st['files_changed']:,} files changed) | service CPU {100 * st['cpu_share_of_one_core']:.1f}% of a core"
            f" over {st['window_s']:.0f} s; live reply after the footage is complete: {_ms(live)}"
            f" | {live['n']:.0f} | <= {100 * t['cpu_share']:.0f}%, <= {t['live_s'] * 1000:.0f} ms | {_yes(st['met'])} |"
        )
    return lines


def _scaleout_rows(so: dict[str, Any], sqlite: dict[str, Any] | None) -> list[str]:
    if "skipped" in so:
        return [f"| 7 | scale-out on PostgreSQL | skipped: {so['skipped']} | 0 | | |"]
    it = so["intake"]
    beside = f"; SQLite in this run {sqlite['events_per_s']:.0f}/s" if sqlite and "events_per_s" in sqlite else ""
    rows = [
        f"| 7 | intake on PostgreSQL ({so['postgresql']}), one instance | {it.get('events_per_s', 0):.0f} events/s"
        f" ({it['events']} in {it.get('acked_seconds', 0):.2f} s){beside}; lost {it['lost']} | {it['events']} |"
        f" >= 5000/s | {_yes(it.get('events_per_s', 0) >= 5000 and it['lost'] == 0)} |"
    ]
    for k, b in so["burst"].items():
        rows.append(
            f"| 7 | burst on PostgreSQL, {k} instance(s) on the same 2 cores | {b['incidents']} incidents: last reply"
            f" after {b['time_to_last_reply_s']:.1f} s, {b['clips_per_s']:.1f} clips/s ({b['vs_ideal']:.2f}x ideal);"
            f" {', '.join(b['statuses'])} | {b['incidents']} | | |"
        )
    t = so["takeover"]
    rows.append(
        f"| 7 | takeover after `kill -9` of the instance running the job ({t['settings']}) |"
        f" p50 {t['seconds']['median_ms'] / 1000:.1f} s, p95 {t['seconds']['p95_ms'] / 1000:.1f} s | {t['runs']} | | |"
    )
    return rows


def _profile_table(title: str, column: str, unit: str, rows: list[tuple[str, float]], fmt: str) -> list[str]:
    """A profile as a markdown table of inclusive milliseconds per unit of work."""
    out = [title, "", f"| {column} | inclusive ms per {unit} |", "| --- | --- |"]
    return out + [f"| `{name}` | {ms:{fmt}} |" for name, ms in rows]


def details(s: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "clip_cost" in s:
        c = s["clip_cost"]
        out += ["### 1. Where the clip path's time goes (each step timed alone, interleaved)", ""]
        out += ["| step | median | p95 |", "| --- | --- | --- |"]
        for name, st in c["phases"].items():
            out.append(f"| {name} | {st['median_ms']:.1f} ms | {st['p95_ms']:.1f} ms |")
        prof = c.get("profile", {})
        if "inclusive" in prof:
            title = f"pyinstrument over {prof['runs']} warm `make_clip` calls ({prof['file']}):"
            out += [
                "",
                *_profile_table(
                    title, "function", "clip", [(r["function"], r["ms_per_clip"]) for r in prof["inclusive"]], ".1f"
                ),
            ]
        out.append("")
    if "e2e" in s:
        prof = s["e2e"].get("profile", {})
        if "inclusive" in prof:
            title = (
                f"### 2. py-spy on the service over {prof['incidents']} more incidents"
                f" ({prof['wall_ms_per_incident']:.0f} ms each with the profiler; {prof['file']})"
            )
            rows = [(r["function"], r["ms_per_unit"]) for r in prof["inclusive"]]
            out += [*_profile_table(title, "function (all threads, waits included)", "incident", rows, ".1f"), ""]
        if "store_costs" in s["e2e"]:
            out += ["SQLite commits of one job on this disk (WAL, synchronous=FULL):", ""]
            out += ["| store call | median | p95 |", "| --- | --- | --- |"]
            for name, st in s["e2e"]["store_costs"].items():
                out.append(f"| `{name}` | {st['median_ms']:.2f} ms | {st['p95_ms']:.2f} ms |")
            out.append("")
    if "live" in s:
        out += ["### 3. Live incidents", ""]
        out.append("| window end after publish | window end -> segment complete | segment complete -> reply | status |")
        out.append("| --- | --- | --- | --- |")
        for row in s["live"]["incidents"]:
            out.append(
                f"| {row['window_end_after_publish_s']:.2f} s | {row['window_end_to_last_segment_complete_s']:.2f} s"
                f" | {row['last_segment_complete_to_reply_ms']:.0f} ms | {row['status']} |"
            )
        out.append("")
    if "intake" in s:
        prof = s["intake"].get("profile", {})
        if "inclusive" in prof:
            title = (
                f"### 5. py-spy on the service over {prof['events']} more events"
                f" ({prof['events_per_s_with_profiler']:.0f}/s with the profiler; {prof['file']})"
            )
            rows = [(r["function"], r["ms_per_unit"]) for r in prof["inclusive"]]
            out += [*_profile_table(title, "function (all threads, waits included)", "event", rows, ".3f"), ""]
    return out


def _storage_rows(st: dict[str, Any], e2e: dict[str, Any] | None) -> list[str]:
    up, e = st["upload"], st["e2e"]["latency"]
    local = f"; local disk in this run: p50 {e2e['latency']['median_ms']:.1f} ms" if e2e else ""
    return [
        f"| 8 | upload of the seed clip ({st['clip_bytes'] / 1e6:.1f} MB) to {st['server']}: clip storage (upload,"
        f" HEAD, MD5 check) vs bare boto3 `upload_file` | {_ms(up['clipbridge'])} vs {_ms(up['bare'])}:"
        f" **{st['upload_ratio']:.2f}x** | {up['bare']['n']:.0f} | | |",
        f"| 8 | publish -> reply with `storage.backend: s3` (cut, upload, verify, presign) | p50 {e['median_ms']:.1f} ms,"
        f" p95 {e['p95_ms']:.1f} ms{local} | {e['n']:.0f} | | |",
    ]
