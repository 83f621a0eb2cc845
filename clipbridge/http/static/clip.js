// #/clip/<id> : one clip. The video plays from its signed link (no token needed), the bar shows what was asked for
// and what exists; polled until the job finishes.

import { ApiError, getJSON } from "./api.js";
import { clipBar } from "./bar.js";
import { announce, bytes, duration, gapBadge, h, localTime, statusBadge, timeEl } from "./util.js";

const POLL_MS = 2000;
const UNFINISHED = ["pending", "waiting", "processing"];

export function clipView(main, clipId) {
  let stopped = false;
  let timer = null;
  let shown = null; // the status last drawn
  const title = h("h1", {}, "Clip");
  const body = h("div", { class: "clip-view" }, h("p", {}, "Loading…"));
  main.append(h("p", { class: "back" }, h("a", { href: "#/" }, "← All clips")), title, body);

  async function tick() {
    try {
      const clip = await getJSON(`/clips/${encodeURIComponent(clipId)}`);
      if (stopped) return;
      title.textContent = `${clip.camera_id} at ${localTime(clip.timestamp)}`;
      document.title = `${title.textContent} · clipbridge`;
      if (clip.status !== shown) {
        if (shown !== null) announce(`The clip is now ${clip.status}.`);
        shown = clip.status;
        body.replaceChildren(...draw(clip));
      }
      if (UNFINISHED.includes(clip.status)) timer = setTimeout(tick, POLL_MS);
    } catch (exc) {
      if (stopped) return;
      const missing = exc instanceof ApiError && exc.status === 404;
      body.replaceChildren(h("p", { class: "error" }, missing ? `No clip with id ${clipId}.` : `Could not load the clip: ${exc.message}`));
      announce(missing ? "No such clip." : "Could not load the clip.");
      if (!missing) timer = setTimeout(tick, POLL_MS);
    }
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function draw(clip) {
  const out = [];
  const when = localTime(clip.timestamp);
  const badges = h("p", { class: "badges" }, statusBadge(clip.status), gapBadge(clip.gaps));
  out.push(badges);
  if (clip.download_url) {
    const video = h("video", {
      controls: true,
      preload: "metadata",
      playsinline: true,
      src: clip.download_url,
      poster: clip.snapshot_url || null,
      "aria-label": `Clip from ${clip.camera_id} at ${when}`,
    });
    out.push(h("div", { class: "player" }, video), clipBar(clip, video), actions(clip));
  } else if (UNFINISHED.includes(clip.status)) {
    out.push(h("p", { class: "note" }, `This clip is ${clip.status}: the page updates itself when it is ready.`));
  } else if (clip.error) {
    out.push(h("p", { class: "error" }, `${clip.error.code}: ${clip.error.message}`));
  } else {
    out.push(h("p", { class: "note" }, "This clip has no file (it may have expired)."));
  }
  out.push(h("h2", {}, "Details"), details(clip));
  return out;
}

function actions(clip) {
  const box = h("div", { class: "actions" });
  box.append(h("a", { class: "button", href: clip.download_url, download: clip.video_file || "" }, "Download"));
  const copy = h("button", { type: "button" }, "Copy link");
  const fallback = h("div", { class: "field copy-fallback", hidden: true });
  copy.addEventListener("click", () => copyLink(clip.download_url, fallback));
  box.append(copy);
  const notes = Object.entries(clip.annotations || {});
  if (notes.length) {
    box.append(h("span", { class: "annotations" }, "Annotations: ", notes.map(([kind, url]) => h("a", { href: url, target: "_blank", rel: "noopener" }, kind.toUpperCase()))));
  }
  const expires = Number(new URL(clip.download_url, window.location.href).searchParams.get("exp"));
  const hint = expires ? h("p", { class: "hint" }, `The link opens without a token until ${localTime(new Date(expires * 1000).toISOString())}.`) : null;
  return h("div", {}, box, fallback, hint);
}

async function copyLink(url, fallback) {
  try {
    await navigator.clipboard.writeText(url); // only in a secure context (https, localhost)
    announce("Link copied.");
    return;
  } catch {
    // no clipboard here: show the link selected, to copy by hand
  }
  const input = h("input", { id: "copy-link", type: "text", readonly: true, value: url });
  fallback.replaceChildren(h("label", { for: "copy-link" }, "Link (selected: press Ctrl+C or long-press to copy)"), input);
  fallback.hidden = false;
  input.focus();
  input.select();
  announce("The link is selected: copy it with Ctrl+C.");
}

function details(clip) {
  const rows = [
    ["Clip id", clip.clip_id],
    ["Event id", clip.event_id],
    ["Camera", clip.camera_id],
    ["Incident", timeEl(clip.timestamp)],
    ["Requested", span(clip.requested_start, clip.requested_end)],
    ["Clip", clip.actual_start ? span(clip.actual_start, clip.actual_end) : "—"],
    ["Duration", duration(clip.duration_seconds)],
    ["File size", bytes(clip.file_size)],
    ["Codecs", clip.codecs ? [clip.codecs.video, clip.codecs.audio, clip.codecs.width && `${clip.codecs.width}×${clip.codecs.height}`].filter(Boolean).join(", ") : "—"],
    ["Gaps", clip.gaps.length ? h("ul", {}, clip.gaps.map((g) => h("li", {}, span(g.start, g.end), ` (${duration(g.seconds)}, ${g.reason})`))) : "none"],
    ["Created", timeEl(clip.created_at)],
    ["Completed", clip.completed_at ? timeEl(clip.completed_at) : "—"],
    ["Error", clip.error ? `${clip.error.code}: ${clip.error.message}` : null],
    ["Warnings", clip.warnings && clip.warnings.length ? clip.warnings.join("; ") : null],
    ["Metadata", clip.metadata && Object.keys(clip.metadata).length ? h("pre", {}, JSON.stringify(clip.metadata, null, 2)) : null],
  ];
  return h(
    "table",
    { class: "details" },
    h("tbody", {}, rows.filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v)))),
  );
}

function span(start, end) {
  return h("span", {}, timeEl(start), " to ", timeEl(end, localTime(start).slice(0, 10) !== localTime(end).slice(0, 10)));
}
