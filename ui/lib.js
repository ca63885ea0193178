// Shared helpers of the web UI: building elements, calling the API with the
// session's CSRF token, following the event stream, formatting, and the
// confirmation dialog. Every text from the server goes through textContent,
// never innerHTML: plugin summaries and comments are untrusted.

/** The signed-in caller: { name, role, csrf, expires_ms }. */
export const session = { current: null };

/** Builds an element: h("a", { href: "#/x", class: "y" }, "text", child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children, skipping absent ones (null, false). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An SVG element. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") el.textContent = value;
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.appendChild(child);
  return el;
}

/** A refusal or failure from the API, with its stable code. */
export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; the session cookie goes along, and the CSRF token with
 * every request that changes state. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.current && session.current.csrf) {
    headers["X-CSRF-Token"] = session.current.csrf;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiFailure(0, "network", "The daemon cannot be reached: " + e.message);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const code = (data && data.code) || "http." + response.status;
    const message = (data && data.message) || response.statusText;
    if (response.status === 401 && path !== "/api/v1/session") {
      window.dispatchEvent(new CustomEvent("signed-out"));
    }
    throw new ApiFailure(response.status, code, message);
  }
  return data;
}

/** Follows a server-sent event stream, calling onEvent(name, data) for each
 * event, and reconnecting after a drop until signal aborts. A fetch-based
 * reader sees every event name, which EventSource only offers one by one.
 * The daemon ends the stream with an `ended` event when the session signs
 * out or its token is revoked: then the page goes back to signing in
 * instead of reconnecting. */
export async function follow(path, onEvent, signal, onState) {
  let delay = 500;
  while (!signal.aborted) {
    try {
      const response = await fetch(path, {
        headers: { Accept: "text/event-stream" },
        credentials: "same-origin",
        signal,
      });
      if (response.status === 401) {
        if (onState) onState("signed-out");
        window.dispatchEvent(new CustomEvent("signed-out"));
        return;
      }
      if (!response.ok) throw new Error("status " + response.status);
      if (onState) onState("live");
      delay = 500;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length === 0) continue;
          if (name === "ended") {
            if (onState) onState("signed-out");
            window.dispatchEvent(new CustomEvent("signed-out"));
            return;
          }
          let parsed = data.join("\n");
          try {
            parsed = JSON.parse(parsed);
          } catch {
            // Plain-text events (such as `lagged`) stay text.
          }
          onEvent(name, parsed);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    if (onState) onState("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 8000);
  }
}

/** An indicator of the event stream's state, and the callback that keeps
 * it current, for `follow`. */
export function liveIndicator() {
  const el = h("span", { class: "live", id: "live" }, "connecting…");
  const update = (state) => {
    el.textContent = state;
    el.className = "live is-" + state;
  };
  return [el, update];
}

/** Runs `load` now and again whenever `poke` is called, never twice at once
 * and at most once per `gap` milliseconds: a burst of events costs one
 * reload, not one per event. */
export function coalesce(load, gap) {
  let running = false;
  let again = false;
  let last = 0;
  async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    const wait = last + gap - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    try {
      last = Date.now();
      await load();
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      }
    }
  }
  return run;
}

/** The release clock's offset from this browser's clock: a daemon may run
 * a manual clock, and countdowns must follow it. */
export const clock = { offset: 0 };

export async function syncClock() {
  try {
    const c = await api("GET", "/api/v1/clock");
    clock.offset = c.now_ms - Date.now();
  } catch {
    clock.offset = 0;
  }
}

export function now() {
  return Date.now() + clock.offset;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + String(s % 60).padStart(2, "0") + "s";
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return hrs + "h " + String(m % 60).padStart(2, "0") + "m";
  return Math.floor(hrs / 24) + "d " + (hrs % 24) + "h";
}

/** Writes the countdown to an element's `data-deadline` on the release
 * clock, worded by its `data-phrase` ("expires in …", or "… left"). */
export function countdown(el) {
  const left = Number(el.dataset.deadline) - now();
  el.textContent = el.dataset.phrase === "expires"
    ? (left > 0 ? "expires in " + duration(left) : "expiring now")
    : (left > 0 ? duration(left) + " left" : "due now");
  return el;
}

export function time(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

/** A measurement in at most four significant digits (`0.0123`, `131.2`,
 * `12350`), in exponent form when very small or very large (`2.7e-11`). */
export function number(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e7 || a < 1e-4) return v.toExponential(2).replace(/\.?0+e/, "e").replace("e+", "e");
  return String(Number(v.toPrecision(4)));
}

/** A coloured status badge. */
export function badge(status) {
  return h("span", { class: "badge s-" + status, "data-status": status }, status);
}

export const FINISHED = ["succeeded", "failed", "rolled-back", "rejected", "abandoned"];

/** Whether the signed-in role may command releases (approve, reject,
 * pause, resume, roll back). The server refuses anyway; the UI does not
 * offer what would be refused. */
export function canCommand() {
  const role = session.current && session.current.role;
  return role === "admin" || role === "release-manager";
}

/** Shows an error across the top of the page. */
export function showError(message) {
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.hidden = false;
}

export function clearError() {
  document.getElementById("banner").hidden = true;
}

/** An empty state: what is missing and what to do about it. */
export function empty(title, hint) {
  return h("div", { class: "empty" }, h("strong", {}, title), hint ? h("p", {}, hint) : null);
}

/** Asks for confirmation, with a comment; resolves to the comment, or null
 * when cancelled. `run(comment)` performs the action: the dialog stays open
 * and shows its error if it fails. */
export function confirmAction({ title, body, confirmLabel, commentRequired, danger, run }) {
  const dialog = document.getElementById("confirm");
  const form = document.getElementById("confirm-form");
  const comment = document.getElementById("confirm-comment");
  const error = document.getElementById("confirm-error");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").textContent = body;
  document.getElementById("confirm-comment-label").textContent = commentRequired
    ? "Comment (required)"
    : "Comment (optional)";
  comment.value = "";
  comment.required = !!commentRequired;
  error.hidden = true;
  ok.textContent = confirmLabel;
  // What cannot be taken back confirms in red.
  ok.className = danger ? "danger" : "primary";
  ok.disabled = false;
  return new Promise((resolve) => {
    function done(result) {
      form.removeEventListener("submit", submit);
      cancel.removeEventListener("click", dismiss);
      dialog.removeEventListener("close", dismiss);
      if (dialog.open) dialog.close();
      resolve(result);
    }
    async function submit(event) {
      event.preventDefault();
      const text = comment.value.trim();
      if (commentRequired && !text) {
        error.textContent = "A comment is required.";
        error.hidden = false;
        return;
      }
      ok.disabled = true;
      try {
        await run(text);
        done(text);
      } catch (e) {
        error.textContent = (e.code ? e.code + ": " : "") + e.message;
        error.hidden = false;
        ok.disabled = false;
      }
    }
    function dismiss() {
      done(null);
    }
    form.addEventListener("submit", submit);
    cancel.addEventListener("click", dismiss);
    // Escape, or leaving the page (which closes the dialog), dismisses it.
    dialog.addEventListener("close", dismiss);
    dialog.showModal();
    comment.focus();
  });
}
