// Calls to the REST API. The token (http.api_token) is asked for once, on the first 401, and kept for the tab
// (sessionStorage); every call sends it as a bearer header. Files open through the signed links the API hands out.

import { announce } from "./util.js";

const KEY = "clipbridge.token";
let asking = null; // one prompt for all the calls that got a 401 at the same time

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function storedToken() {
  return sessionStorage.getItem(KEY);
}

function askToken(refused) {
  if (asking) return asking;
  const panel = document.getElementById("token-panel");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const note = document.getElementById("token-note");
  note.textContent = refused
    ? "That token was refused. Enter the service's API token (http.api_token)."
    : "This service needs its API token (http.api_token). It is kept for this tab only.";
  panel.hidden = false;
  input.value = "";
  input.focus();
  announce(refused ? "The token was refused: enter it again." : "The API token is needed.");
  asking = new Promise((resolve) => {
    form.addEventListener(
      "submit",
      (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        input.value = "";
        panel.hidden = true;
        asking = null;
        announce("Token saved for this tab.");
        resolve();
      },
      { once: true },
    );
  });
  return asking;
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

// fetch with the token; on 401 asks for it and tries again; any other error status throws ApiError.
export async function request(path, options = {}) {
  for (;;) {
    const sent = storedToken();
    const headers = new Headers(options.headers || {});
    if (sent) headers.set("Authorization", `Bearer ${sent}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      if (storedToken() !== sent) continue; // another call got a new token meanwhile
      if (sent !== null) sessionStorage.removeItem(KEY);
      await askToken(sent !== null);
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

export async function getJSON(path) {
  return (await request(path)).json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(key, value);
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}
