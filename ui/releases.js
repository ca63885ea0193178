// The releases page: active releases first, then recent ones, filterable by
// application, environment and state, and kept live by the event stream.

import { api, h, fill, badge, duration, now, follow, coalesce, liveIndicator, empty, showError, FINISHED } from "./lib.js";

const STATES = [
  "", "queued", "running", "waiting-approval", "paused", "rolling-back", "blocked",
  "succeeded", "failed", "rolled-back", "rejected", "abandoned",
];

export function render(view) {
  const stop = new AbortController();
  const filters = { application: "", environment: "", status: "" };
  const known = new Map();
  const [live, showLive] = liveIndicator();
  const body = h("div", { id: "releases" }, h("p", { class: "muted" }, "Loading…"));

  const input = (key, label, list) =>
    h("label", { class: "filter" }, label,
      list
        ? h("select", { id: "filter-" + key, onchange: (e) => { filters[key] = e.target.value; reload(); } },
            list.map((s) => h("option", { value: s }, s || "any")))
        : h("input", {
            id: "filter-" + key,
            placeholder: "any",
            onchange: (e) => { filters[key] = e.target.value.trim(); reload(); },
          }));

  view.append(
    h("div", { class: "title-row" }, h("h1", {}, "Releases"), live),
    h("div", { class: "filters" },
      input("application", "Application"),
      input("environment", "Environment"),
      input("status", "State", STATES)),
    body,
  );

  let rows = [];
  async function load() {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
    try {
      rows = await api("GET", "/api/v1/releases" + (query.size ? "?" + query : ""));
      known.clear();
      for (const r of rows) known.set(r.id, r);
      draw();
    } catch (e) {
      showError("Releases cannot be read: " + e.message);
    }
  }
  const reload = coalesce(load, 250);

  function draw() {
    if (rows.length === 0) {
      const filtered = Object.values(filters).some(Boolean);
      fill(body,
        filtered
          ? empty("No release matches these filters.", "Clear a filter to see more.")
          : empty("No releases yet.", "Start one with `greenlight release start`, or let a schedule start it."),
      );
      return;
    }
    const active = rows.filter((r) => !FINISHED.includes(r.status));
    const recent = rows.filter((r) => FINISHED.includes(r.status));
    fill(body,
      section("Active", active, "Nothing is running."),
      section("Recent", recent, "Nothing has finished yet."),
    );
  }

  function section(title, list, none) {
    return h("section", { class: "card" },
      h("h2", {}, title + " (" + list.length + ")"),
      list.length === 0 ? h("p", { class: "muted" }, none) :
        h("table", { class: "grid" },
          h("thead", {}, h("tr", {},
            ["Release", "Application", "Environment", "Version", "Flow", "State", "Started by", "Running for"]
              .map((c) => h("th", {}, c)))),
          h("tbody", {}, list.map(row))));
  }

  function row(r) {
    const end = FINISHED.includes(r.status) ? r.updated_ms : now();
    return h("tr", { "data-release": r.id },
      h("td", {}, h("a", { href: "#/releases/" + encodeURIComponent(r.id) }, r.id)),
      h("td", {}, r.application),
      h("td", {}, r.environment),
      h("td", {}, r.version),
      h("td", {}, r.flow + " v" + r.flow_version),
      h("td", {}, badge(r.status), r.emergency ? h("span", { class: "badge emergency" }, "emergency") : null),
      h("td", {}, r.started_by),
      h("td", { class: "dur", "data-since": r.created_ms, "data-until": FINISHED.includes(r.status) ? end : "" },
        duration(end - r.created_ms)));
  }

  load();
  follow("/api/v1/events", (name, event) => {
    if (name === "lagged" || !event || !event.release) return reload();
    const r = known.get(event.release);
    // A new release, or one whose state changed, may move between the
    // sections or leave the filter: read the list again.
    if (!r || (event.status && event.status !== r.status)) reload();
  }, stop.signal, showLive);
  // Running times tick in place, without redrawing the tables.
  const ticker = setInterval(() => {
    for (const cell of body.querySelectorAll("td.dur")) {
      if (cell.dataset.until) continue;
      cell.textContent = duration(now() - Number(cell.dataset.since));
    }
  }, 1000);
  return () => { stop.abort(); clearInterval(ticker); };
}
