// Time bars: a clip's (requested window, clip span, gaps, incident, playhead; seeks the video) and a camera's coverage
// (spans and gaps over a range; a click picks a moment). Positions are percentages of the bar's range.

import { duration, h, localTime, percent } from "./util.js";

const ms = (iso) => new Date(iso).getTime();

function block(cls, start, end, lo, hi, attrs = {}) {
  const left = percent(start, lo, hi);
  const width = Math.max(0, percent(end, lo, hi) - left);
  // A block narrower than its CSS min-width at the right edge moves left to stay inside the bar.
  return h("div", { class: cls, style: { left: `min(${left}%, calc(100% - 3px))`, width: `${width}%` }, ...attrs });
}

function marker(cls, at, lo, hi, attrs = {}) {
  return h("div", { class: cls, style: { left: `${percent(at, lo, hi)}%` }, ...attrs });
}

function gapTitle(gap) {
  return `gap ${localTime(gap.start, false)} to ${localTime(gap.end, false)} (${duration(gap.seconds)}, ${gap.reason})`;
}

// The clip's bar under its <video>. Video time skips the gaps inside the clip (the segments are joined), so a
// moment on the wall clock maps to video time minus the gaps before it.
export function clipBar(clip, video) {
  const start = ms(clip.actual_start || clip.requested_start);
  const end = ms(clip.actual_end || clip.requested_end);
  const lo = Math.min(ms(clip.requested_start), start);
  const hi = Math.max(ms(clip.requested_end), end);
  const inner = clip.gaps
    .map((g) => [Math.max(ms(g.start), start), Math.min(ms(g.end), end)])
    .filter(([a, b]) => b > a)
    .sort((a, b) => a[0] - b[0]);
  const wallAt = (t) => {
    let wall = start + t * 1000;
    for (const [a, b] of inner) if (wall >= a) wall += b - a;
    return Math.min(wall, end);
  };
  const videoAt = (wall) => {
    let t = Math.min(Math.max(wall, start), end) - start;
    for (const [a, b] of inner) if (wall > a) t -= Math.min(wall, b) - a;
    return Math.max(0, t / 1000);
  };

  const playhead = marker("playhead", start, lo, hi);
  const bar = h(
    "div",
    {
      class: "bar clip-bar",
      role: "slider",
      tabindex: 0,
      "aria-label": "Position in the clip (arrow keys seek 1 s, Page Up/Down 5 s)",
      "aria-valuemin": 0,
      "aria-valuenow": 0,
    },
    block("requested", ms(clip.requested_start), ms(clip.requested_end), lo, hi, { title: "requested window" }),
    block("span", start, end, lo, hi, { title: "the clip" }),
    clip.gaps.map((g) => block("gap", ms(g.start), ms(g.end), lo, hi, { title: gapTitle(g), dataset: { start: g.start, end: g.end, reason: g.reason } })),
    marker("incident", ms(clip.timestamp), lo, hi, { title: `incident at ${localTime(clip.timestamp, false)}` }),
    playhead,
  );

  const show = () => {
    const t = video.currentTime || 0;
    const wall = wallAt(t);
    playhead.style.left = `${percent(wall, lo, hi)}%`;
    bar.setAttribute("aria-valuenow", t.toFixed(1));
    bar.setAttribute("aria-valuetext", `${localTime(new Date(wall).toISOString(), false)}, ${t.toFixed(1)} s into the clip`);
    if (Number.isFinite(video.duration)) bar.setAttribute("aria-valuemax", video.duration.toFixed(1));
  };
  const seek = (t) => {
    const limit = Number.isFinite(video.duration) ? video.duration : (end - start) / 1000;
    video.currentTime = Math.min(Math.max(0, t), limit);
    show();
  };
  for (const name of ["timeupdate", "seeked", "loadedmetadata", "seeking"]) video.addEventListener(name, show);
  bar.addEventListener("click", (event) => {
    const box = bar.getBoundingClientRect();
    seek(videoAt(lo + ((event.clientX - box.left) / box.width) * (hi - lo)));
  });
  bar.addEventListener("keydown", (event) => {
    const step = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1, PageDown: -5, PageUp: 5 }[event.key];
    if (step !== undefined) seek(video.currentTime + step);
    else if (event.key === "Home") seek(0);
    else if (event.key === "End") seek(Infinity);
    else return;
    event.preventDefault();
  });
  show();

  const scale = h(
    "div",
    { class: "scale", "aria-hidden": "true" },
    h("span", {}, localTime(new Date(lo).toISOString(), false)),
    h("span", {}, localTime(new Date(hi).toISOString(), false)),
  );
  const legend = h(
    "ul",
    { class: "legend" },
    h("li", {}, h("span", { class: "key requested" }), "requested window"),
    h("li", {}, h("span", { class: "key span" }), "clip"),
    h("li", {}, h("span", { class: "key gap" }), "gap"),
    h("li", {}, h("span", { class: "key incident" }), "incident"),
  );
  return h("div", { class: "timebar" }, bar, scale, legend);
}

// A camera's coverage over [start, end] (ISO): spans and gaps from its timeline; onPick(ms) on a click.
export function coverageBar(timeline, start, end, onPick, label) {
  const lo = ms(start);
  const hi = ms(end);
  const bar = h(
    "div",
    { class: "bar coverage", title: "Click a moment to export it ±15 s", "aria-label": label, role: "group" },
    timeline.spans.map((s) => block("span", ms(s.start), ms(s.end), lo, hi, { dataset: { start: s.start, end: s.end } })),
    timeline.gaps.map((g) => block("gap", ms(g.start), ms(g.end), lo, hi, { title: gapTitle(g), dataset: { start: g.start, end: g.end, reason: g.reason } })),
  );
  const pick = marker("pick", lo, lo, hi, { hidden: true });
  bar.append(pick);
  bar.addEventListener("click", (event) => {
    const box = bar.getBoundingClientRect();
    const at = Math.round((lo + ((event.clientX - box.left) / box.width) * (hi - lo)) / 1000) * 1000; // whole seconds
    pick.style.left = `${percent(at, lo, hi)}%`;
    pick.hidden = false;
    onPick(at);
  });
  const scale = h(
    "div",
    { class: "scale", "aria-hidden": "true" },
    h("span", {}, localTime(start)),
    h("span", {}, localTime(new Date((lo + hi) / 2).toISOString())),
    h("span", {}, localTime(end)),
  );
  return h("div", { class: "timebar" }, bar, scale);
}
