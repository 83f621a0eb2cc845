// #/ : the clips, newest first, with filters; polled every 2 s, rows keyed by clip_id and changed in place.

import { getJSON, query } from "./api.js";
import { STATUSES, announce, duration, fromLocalInput, gapBadge, h, localTime, statusBadge, timeEl } from "./util.js";

const POLL_MS = 2000;
const PAGE = 50;

export function clipsView(main) {
  let stopped = false;
  let timer = null;
  let limit = PAGE;
  let lastError = "";
  const rows = new Map(); // clip_id -> {el, sig}
  const firstSnapshot = new Map(); // clip_id -> the first signed URL seen: each answer signs anew, the picture is the same

  const camera = h("select", { id: "f-camera", name: "camera_id" }, h("option", { value: "" }, "All cameras"));
  const status = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.filter((s) => s !== "rejected").map((s) => h("option", { value: s }, s)),
  );
  const since = h("input", { id: "f-since", name: "since", type: "datetime-local", step: "1" });
  const until = h("input", { id: "f-until", name: "until", type: "datetime-local", step: "1" });
  const field = (label, input) => h("div", { class: "field" }, h("label", { for: input.id }, label), input);
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter clips" },
    field("Camera", camera),
    field("Status", status),
    field("Created from", since),
    field("Created until", until),
    h("div", { class: "field buttons" }, h("button", { type: "submit" }, "Apply"), h("button", { type: "reset" }, "Clear")),
  );
  const summary = h("p", { class: "summary", id: "clips-summary" }, "Loading clips…");
  const list = h("ol", { class: "clips", "aria-labelledby": "clips-title", "aria-describedby": "clips-summary" });
  const more = h("button", { type: "button", class: "more", hidden: true }, "Show more");
  const error = h("p", { class: "error", hidden: true });
  main.append(h("h1", { id: "clips-title" }, "Clips"), form, error, summary, list, more);

  const restart = () => {
    limit = PAGE;
    list.replaceChildren();
    rows.clear();
    summary.textContent = "Loading clips…";
    schedule(0);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    restart();
  });
  form.addEventListener("reset", () => setTimeout(restart, 0)); // after the inputs are cleared
  for (const input of [camera, status]) input.addEventListener("change", restart);
  more.addEventListener("click", () => {
    limit = Math.min(500, limit + PAGE);
    schedule(0);
  });

  getJSON("/cameras")
    .then((cameras) => {
      for (const c of cameras) camera.append(h("option", { value: c.camera_id }, c.camera_id));
    })
    .catch(() => {}); // the list still works without the camera names

  function params() {
    const iso = (input) => {
      const ms = fromLocalInput(input.value);
      return ms === null ? null : new Date(ms).toISOString();
    };
    return { camera_id: camera.value, status: status.value, since: iso(since), until: iso(until), limit };
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(tick, ms);
  }

  async function tick() {
    const asked = query(params());
    try {
      const page = await getJSON(`/clips${asked}`);
      if (stopped || asked !== query(params())) return; // a filter changed meanwhile: its own tick is coming
      render(page);
      error.hidden = true;
      lastError = "";
    } catch (exc) {
      if (stopped) return;
      const text = `Could not load the clips: ${exc.message}`;
      error.textContent = text;
      error.hidden = false;
      if (text !== lastError) announce(text);
      lastError = text;
    }
    schedule(POLL_MS);
  }

  function render(page) {
    const seen = new Set();
    let previous = null;
    for (const item of page.items) {
      seen.add(item.clip_id);
      let row = rows.get(item.clip_id);
      const sig = signature(item);
      if (!row) {
        row = { el: h("li", { class: "clip", dataset: { clipId: item.clip_id } }), sig: null };
        rows.set(item.clip_id, row);
      } else if (row.sig && row.sig !== sig && statusOf(row.sig) !== item.status) {
        announce(`Clip from ${item.camera_id} at ${localTime(item.timestamp)} is now ${item.status}.`);
      }
      if (row.sig !== sig) {
        fill(row.el, item);
        row.sig = sig;
      }
      // Keep the order newest first; move a row only when it is out of place (moving keeps the same element).
      const want = previous ? previous.nextSibling : list.firstChild;
      if (want !== row.el) list.insertBefore(row.el, want);
      previous = row.el;
    }
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.el.remove();
        rows.delete(id);
      }
    }
    const shown = page.items.length;
    summary.textContent =
      page.total === 0 ? "No clips match. New incidents appear here as they come in." : `${shown} of ${page.total} clips, newest first; updated live.`;
    more.hidden = shown >= page.total || limit >= 500;
  }

  function fill(li, item) {
    if (item.snapshot_url && !firstSnapshot.has(item.clip_id)) firstSnapshot.set(item.clip_id, item.snapshot_url);
    const snap = firstSnapshot.get(item.clip_id);
    const when = localTime(item.timestamp);
    const old = li.querySelector("img.thumb");
    const picture =
      old && snap && old.dataset.src === snap
        ? old
        : snap
          ? h("img", { class: "thumb", src: snap, dataset: { src: snap }, alt: `Snapshot from ${item.camera_id} at ${when}`, loading: "lazy", width: 160, height: 90 })
          : h("div", { class: "thumb placeholder", role: "img", "aria-label": "No snapshot yet" }, placeholderText(item));
    const link = h(
      "a",
      { class: "clip-link", href: `#/clip/${encodeURIComponent(item.clip_id)}` },
      picture,
      h(
        "span",
        { class: "facts" },
        h("span", { class: "camera" }, item.camera_id),
        h("span", { class: "when" }, timeEl(item.timestamp)),
        h("span", { class: "length" }, item.duration_seconds ? duration(item.duration_seconds) : ""),
        h("span", { class: "badges" }, statusBadge(item.status), gapBadge(item.gaps)),
        item.error ? h("span", { class: "why" }, item.error.message) : null,
      ),
    );
    li.replaceChildren(link);
    li.dataset.status = item.status;
  }

  schedule(0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function placeholderText(item) {
  if (["pending", "waiting", "processing"].includes(item.status)) return `${item.status}…`;
  return "no picture";
}

function signature(item) {
  return JSON.stringify([item.status, item.snapshot_url !== null, item.gaps.length, item.error, item.duration_seconds, item.timestamp]);
}

function statusOf(sig) {
  return JSON.parse(sig)[0];
}
