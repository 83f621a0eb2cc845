// #/cameras : liveness of each camera and its coverage bar (24 h by default, ending at its newest footage); a moment
// picked on the bar, or typed in the form, is exported ±15 s through GET /cameras/{id}/clip.mp4.

import { getJSON, query, request } from "./api.js";
import { coverageBar } from "./bar.js";
import { announce, duration, fromLocalInput, h, localTime, timeEl, toLocalInput } from "./util.js";

const STALE_SECONDS = 60;
const AROUND_MS = 15000;
const POLL_MS = 5000;
const RANGES = [
  ["86400", "24 hours"],
  ["3600", "1 hour"],
  ["600", "10 minutes"],
];

export function camerasView(main) {
  let stopped = false;
  let timer = null;
  const cards = new Map(); // camera_id -> {el, live, draw}
  const urls = []; // object URLs of exports, revoked when the view goes
  const range = h("select", { id: "range" }, RANGES.map(([v, label]) => h("option", { value: v }, label)));
  const summary = h("p", { class: "summary" }, "Loading cameras…");
  const list = h("ul", { class: "cameras" });
  main.append(
    h("h1", {}, "Cameras"),
    h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { for: "range" }, "Coverage shown"), range)),
    summary,
    h(
      "ul",
      { class: "legend cameras-legend" },
      h("li", {}, h("span", { class: "key span" }), "footage"),
      h("li", {}, h("span", { class: "key gap" }), "no footage (gap)"),
      h("li", {}, "Click the bar, or type a moment, to export it ±15 s."),
    ),
    list,
  );
  range.addEventListener("change", () => {
    for (const card of cards.values()) card.draw();
  });

  async function tick() {
    try {
      const cameras = await getJSON("/cameras");
      if (stopped) return;
      const stale = cameras.filter((c) => c.seconds_since_last_segment > STALE_SECONDS).length;
      summary.textContent = cameras.length
        ? `${cameras.length} ${cameras.length === 1 ? "camera" : "cameras"}, ${stale} stale (no new segment for over ${STALE_SECONDS} s).`
        : "No cameras: no recordings found yet.";
      for (const camera of cameras) {
        let card = cards.get(camera.camera_id);
        if (!card) {
          card = makeCard(camera, range, urls);
          cards.set(camera.camera_id, card);
          list.append(card.el);
          card.draw();
        }
        card.update(camera);
      }
    } catch (exc) {
      if (stopped) return;
      summary.textContent = `Could not load the cameras: ${exc.message}`;
    }
    timer = setTimeout(tick, POLL_MS);
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const url of urls) URL.revokeObjectURL(url);
  };
}

function makeCard(first, range, urls) {
  let camera = first;
  const id = camera.camera_id;
  const safe = id.replace(/[^A-Za-z0-9_-]/g, "_");
  const live = h("p", { class: "live" });
  const facts = h("p", { class: "facts-line" });
  const barBox = h("div", { class: "bar-box" }, h("p", {}, "Loading coverage…"));
  const gapList = h("details", { class: "gaps" });
  const at = h("input", { id: `at-${safe}`, type: "datetime-local", step: "1", required: true });
  const form = h(
    "form",
    { class: "export", "aria-label": `Export a moment of ${id}` },
    h("div", { class: "field" }, h("label", { for: at.id }, "Moment to export (±15 s)"), at),
    h("div", { class: "field buttons" }, h("button", { type: "submit" }, "Export")),
  );
  const result = h("div", { class: "export-result", "aria-live": "polite" });
  const el = h(
    "li",
    { class: "camera-card", dataset: { cameraId: id } },
    h("h2", {}, id),
    live,
    facts,
    barBox,
    gapList,
    form,
    result,
  );

  const newest = () => new Date(camera.last_end || camera.last_segment_start).getTime();

  async function draw() {
    const end = newest();
    const start = end - Number(range.value) * 1000;
    const startIso = new Date(start).toISOString();
    const endIso = new Date(end).toISOString();
    try {
      const timeline = await getJSON(`/cameras/${encodeURIComponent(id)}/timeline${query({ start: startIso, end: endIso })}`);
      const label = `Coverage of ${id} from ${localTime(startIso)} to ${localTime(endIso)}: ${gapCount(timeline.gaps.length)}`;
      barBox.replaceChildren(coverageBar(timeline, startIso, endIso, (ms) => exportAt(ms), label));
      gapList.replaceChildren(
        h("summary", {}, timeline.gaps.length ? `${gapCount(timeline.gaps.length)} in this range` : "No gaps in this range"),
        h("ul", {}, timeline.gaps.map((g) => h("li", {}, timeEl(g.start), " to ", timeEl(g.end), ` (${duration(g.seconds)}, ${g.reason})`))),
      );
    } catch (exc) {
      barBox.replaceChildren(h("p", { class: "error" }, `Could not load the coverage: ${exc.message}`));
    }
    if (!at.value) at.value = toLocalInput(end - AROUND_MS);
  }

  async function exportAt(ms) {
    at.value = toLocalInput(ms);
    const startIso = new Date(ms - AROUND_MS).toISOString();
    const endIso = new Date(ms + AROUND_MS).toISOString();
    result.replaceChildren(h("p", {}, `Cutting ${localTime(startIso)} to ${localTime(endIso, false)}…`));
    try {
      // The export is guarded by the token (no signed link): fetched with the header, shown from a blob.
      const response = await request(`/cameras/${encodeURIComponent(id)}/clip.mp4${query({ start: startIso, end: endIso })}`);
      const gaps = Number(response.headers.get("X-Clipbridge-Gaps") || 0);
      const url = URL.createObjectURL(await response.blob());
      urls.push(url);
      const name = `${id}_${localTime(new Date(ms).toISOString()).replace(/[-: ]/g, "")}.mp4`;
      result.replaceChildren(
        h("p", {}, `${id}, ${localTime(startIso)} to ${localTime(endIso, false)}`, gaps ? ` (${gapCount(gaps)})` : ""),
        h("video", { class: "export-video", controls: true, preload: "metadata", playsinline: true, src: url, "aria-label": `Export of ${id} around ${localTime(new Date(ms).toISOString())}` }),
        h("p", {}, h("a", { class: "button", href: url, download: name }, "Download the export")),
      );
      announce(`Export of ${id} ready.`);
    } catch (exc) {
      const text = exc.code ? `${exc.code}: ${exc.message}` : exc.message;
      result.replaceChildren(h("p", { class: "error" }, `The export failed: ${text}`));
      announce(`The export failed: ${exc.message}`);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ms = fromLocalInput(at.value);
    if (ms !== null) exportAt(ms);
  });

  function update(next) {
    camera = next;
    const seconds = camera.seconds_since_last_segment;
    const stale = seconds > STALE_SECONDS;
    el.classList.toggle("stale", stale);
    live.replaceChildren(
      stale ? h("span", { class: "badge stale" }, "stale") : h("span", { class: "badge live-ok" }, "live"),
      stale ? ` no new segment for ${duration(seconds)}` : ` last segment ${duration(seconds)} ago`,
    );
    const last = camera.last_end || camera.last_segment_start;
    const sameDay = localTime(camera.first_start).slice(0, 10) === localTime(last).slice(0, 10);
    facts.replaceChildren(`${camera.segments} ${camera.segments === 1 ? "segment" : "segments"}, footage from `, timeEl(camera.first_start), " to ", timeEl(last, !sameDay));
  }

  return { el, draw, update };
}

function gapCount(n) {
  return `${n} ${n === 1 ? "gap" : "gaps"}`;
}
