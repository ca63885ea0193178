// The web UI's entry point: signs in, draws the header, and routes
// `#/page/...` addresses to the page modules. Each page renders into the
// view and returns a function that stops its live updates when it is left.

import { api, session, h, syncClock, showError, clearError, canCommand } from "./lib.js";
import * as releases from "./releases.js";
import * as release from "./release.js";
import * as trains from "./trains.js";
import * as plugins from "./plugins.js";
import * as schedules from "./schedules.js";
import * as audit from "./audit.js";
import * as board from "./board.js";

const view = document.getElementById("view");
let leave = null;

const routes = [
  [/^#\/releases\/([^/]+)$/, "releases", (m) => release.render(view, decodeURIComponent(m[1]))],
  [/^#\/releases\/?$/, "releases", () => releases.render(view)],
  [/^#\/trains\/([^/]+)$/, "trains", (m) => trains.renderOne(view, decodeURIComponent(m[1]))],
  [/^#\/trains\/?$/, "trains", () => trains.render(view)],
  [/^#\/plugins\/?$/, "plugins", () => plugins.render(view)],
  [/^#\/schedules\/?$/, "schedules", () => schedules.render(view)],
  [/^#\/audit\/?$/, "audit", () => audit.render(view)],
  [/^#\/versions\/?$/, "versions", () => board.render(view)],
];

function route() {
  if (leave) leave();
  leave = null;
  clearError();
  // A dialog belongs to the page it was opened on.
  const dialog = document.getElementById("confirm");
  if (dialog.open) dialog.close();
  if (!session.current) return signIn();
  // The version board is the first page: what runs where.
  const hash = location.hash || "#/versions";
  for (const [pattern, nav, render] of routes) {
    const m = hash.match(pattern);
    if (!m) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === nav);
    }
    view.replaceChildren();
    leave = render(m) || null;
    return;
  }
  location.hash = "#/versions";
}

function drawWho() {
  const who = document.getElementById("who");
  const nav = document.getElementById("nav");
  who.replaceChildren();
  nav.hidden = !session.current;
  if (!session.current) return;
  // No link to a page the role cannot read: the audit log is for those who
  // may command releases.
  document.querySelector("[data-nav='audit']").hidden = !canCommand();
  who.append(
    h("span", { class: "name", id: "who-name" }, session.current.name),
    h("span", { class: "role", id: "who-role" }, session.current.role),
    h("button", { class: "link", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

async function signOut() {
  try {
    await api("DELETE", "/api/v1/session");
  } catch {
    // The session may already be gone; signing out locally is what counts.
  }
  session.current = null;
  drawWho();
  route();
}

function signIn() {
  drawWho();
  const error = h("p", { class: "error", id: "sign-in-error", hidden: true });
  const token = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    placeholder: "gl_…",
    required: true,
  });
  const form = h(
    "form",
    { class: "card sign-in", id: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Sign in with an API token. The token is checked once; the browser keeps only a session cookie."),
    h("label", { for: "token" }, "Token"),
    token,
    error,
    h("button", { type: "submit", class: "primary", id: "sign-in-button" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      session.current = await api("POST", "/api/v1/session", { token: token.value.trim() });
      await syncClock();
      drawWho();
      route();
    } catch (e) {
      error.textContent = e.status === 401 ? "That token is unknown or revoked." : e.message;
      error.hidden = false;
    }
  });
  view.replaceChildren(form);
  token.focus();
}

window.addEventListener("hashchange", route);
window.addEventListener("signed-out", () => {
  if (!session.current) return;
  session.current = null;
  showError("Your session has ended; sign in again.");
  drawWho();
  if (leave) leave();
  leave = null;
  signIn();
});

async function start() {
  try {
    session.current = await api("GET", "/api/v1/session");
    await syncClock();
  } catch {
    session.current = null;
  }
  drawWho();
  route();
}

// The release clock is read again every few seconds, so that every
// countdown and running time follows it when it moves.
setInterval(() => {
  if (session.current) syncClock();
}, 5000);

start();
