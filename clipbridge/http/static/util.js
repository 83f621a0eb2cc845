// Small helpers shared by the views: building elements, formatting times, sizes and durations, announcing.

// h("a", {href: "#/", class: "x", dataset: {id: 1}, onclick: f}, "text", child, ...) -> the element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && !key.includes("-") && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// The aria-live region: screen readers read what is put here; sighted users see it in the footer.
export function announce(text) {
  const region = document.getElementById("status");
  if (region) region.textContent = text;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// "2025-08-29 16:30:15" in the browser's time zone.
export function localTime(iso, withDate = true) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

// A <time> showing local time, with the exact UTC instant in datetime (and as a tooltip).
export function timeEl(iso, withDate = true) {
  return h("time", { datetime: iso || "", title: iso || "" }, localTime(iso, withDate));
}

// The value a <input type="datetime-local" step="1"> shows for an instant, and back.
export function toLocalInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime(); // no offset in the value: the browser reads it as local time
  return Number.isNaN(ms) ? null : ms;
}

export function zoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Number(seconds.toFixed(1))} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86400)} d ${Math.round((seconds % 86400) / 3600)} h`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// Status words a badge shows; the colour is a hint, the word says it.
export const STATUSES = ["pending", "waiting", "processing", "done", "partial", "failed", "rejected", "expired"];

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

export function gapBadge(gaps) {
  if (!gaps || gaps.length === 0) return null;
  const seconds = gaps.reduce((sum, g) => sum + (g.seconds || 0), 0);
  const label = `${gaps.length} ${gaps.length === 1 ? "gap" : "gaps"}, ${duration(seconds)} missing`;
  return h("span", { class: "badge gap", title: label }, label);
}

// Where `ms` falls between `start` and `end`, in percent, clamped.
export function percent(ms, start, end) {
  return Math.min(100, Math.max(0, ((ms - start) / (end - start)) * 100));
}
