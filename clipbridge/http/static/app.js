// The page's router: #/ clips, #/clip/<id> one clip, #/cameras. Each view draws into <main> and returns a function
// that stops what it started (polling, listeners) when the route changes.

import { camerasView } from "./cameras.js";
import { clipView } from "./clip.js";
import { clipsView } from "./clips.js";
import { zoneName } from "./util.js";

const ROUTES = [
  [/^#\/clip\/([^/?#]+)$/, clipView, "clips"],
  [/^#\/cameras\/?$/, camerasView, "cameras"],
  [/^(#\/?)?$/, clipsView, "clips"],
];

let stop = null;

function route(first) {
  if (stop) stop();
  stop = null;
  const main = document.getElementById("view");
  main.replaceChildren();
  const hash = window.location.hash;
  const found = ROUTES.map(([pattern, view, nav]) => [hash.match(pattern), view, nav]).find(([m]) => m);
  const [match, view, nav] = found || [[hash], clipsView, "clips"];
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  stop = view(main, ...match.slice(1).map(decodeURIComponent)) || null;
  const title = main.querySelector("h1");
  document.title = title ? `${title.textContent} · clipbridge` : "clipbridge";
  if (!first && title) {
    title.tabIndex = -1;
    title.focus();
  }
}

document.getElementById("zone").textContent = zoneName();
window.addEventListener("hashchange", () => route(false));
route(true);
