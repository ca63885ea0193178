// The version board, the page a release manager opens first: for each
// application, which version runs in each environment and since when, what
// is on its way there (an active release, where it stands), and the last
// releases with their outcomes. Live on the event stream.

import { api, h, fill, badge, time, follow, coalesce, liveIndicator, empty, showError, FINISHED } from "./lib.js";

/** How many finished releases each environment lists. */
const LAST = 3;

export function render(view) {
  const stop = new AbortController();
  const [live, showLive] = liveIndicator();
  const body = h("div", { id: "board" }, h("p", { class: "muted" }, "Loading…"));
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Versions"), live), body);

  async function load() {
    try {
      const [apps, releases] = await Promise.all([api("GET", "/api/v1/apps"), api("GET", "/api/v1/releases")]);
      draw(apps, releases);
    } catch (e) {
      showError("The version board cannot be read: " + e.message);
    }
  }
  const reload = coalesce(load, 250);

  function draw(apps, releases) {
    if (!apps.length) {
      fill(body, empty("No applications yet.", "Describe one's environments with `greenlight inventory apply`."));
      return;
    }
    // Newest first, as the API lists them.
    const of = (app, env) => releases.filter((r) => r.application === app && r.environment === env);
    body.dataset.loaded = "yes";
    fill(body, apps.map((app) => h("section", { class: "card board-app", "data-app": app.name },
      h("h2", {}, app.name),
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["Environment", "Running", "Since", "On its way", "Last releases"].map((c) => h("th", {}, c)))),
        h("tbody", {}, app.environments.map((env) => row(app.name, env, of(app.name, env.name))))))));
  }

  load();
  follow("/api/v1/events", (name, event) => {
    // A release that changes state may change what runs where.
    if (name === "lagged" || !event || event.status) reload();
  }, stop.signal, showLive);
  return () => stop.abort();
}

function link(r, text) {
  return h("a", { href: "#/releases/" + encodeURIComponent(r.id) }, text);
}

function row(app, env, releases) {
  const active = releases.find((r) => !FINISHED.includes(r.status));
  const finished = releases.filter((r) => FINISHED.includes(r.status));
  // The version runs since the last release that finished putting it there.
  const since = finished.find((r) => r.status === "succeeded" && r.version === env.current_version);
  return h("tr", { "data-env": env.name },
    h("td", {}, h("strong", {}, env.name), h("div", { class: "muted" }, env.targets + (env.targets === 1 ? " target" : " targets"))),
    h("td", { class: "running", "data-version": env.current_version || "" }, env.current_version
      ? h("span", { class: "version" }, env.current_version)
      : env.version_unknown
        ? h("span", { class: "warn", title: env.version_unknown }, "unknown")
        : h("span", { class: "muted" }, "nothing released yet")),
    h("td", { class: "since" }, since ? [time(since.progress.finished_ms || since.updated_ms), h("div", { class: "muted" }, "by ", link(since, since.id))] : "–"),
    h("td", { class: "on-its-way" }, active ? [
      h("span", { class: "version" }, active.version), " ", badge(active.status),
      h("div", { class: "muted" }, active.progress.stage
        ? "stage " + active.progress.stage_number + " of " + active.progress.stages + ": " + active.progress.stage
        : "", " ", link(active, "open"))] : h("span", { class: "muted" }, "nothing")),
    h("td", { class: "last" }, finished.length
      ? h("ul", { class: "last-releases" }, finished.slice(0, LAST).map((r) => h("li", {},
        link(r, r.version), " ", badge(r.status), " ", h("span", { class: "muted" }, time(r.progress.finished_ms || r.updated_ms)))))
      : h("span", { class: "muted" }, "none")));
}
