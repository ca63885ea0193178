// The releases page: active releases first, then recent ones, filterable by
// application, environment and state, and kept live by the event stream.

import {
  api, h, fill, badge, duration, time, now, countdown, follow, coalesce, liveIndicator, empty, showError, FINISHED,
} from "./lib.js";

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
            ["Release", "Application", "Environment", "Version", "Flow", "State", "Progress", "Started by",
              title === "Active" ? "Running for" : "Finished"]
              .map((c) => h("th", {}, c)))),
          h("tbody", {}, list.map(row))));
  }

  function row(r) {
    const finished = FINISHED.includes(r.status);
    const p = r.progress;
    const end = p.finished_ms || r.updated_ms;
    return h("tr", { "data-release": r.id },
      h("td", {}, h("a", { href: "#/releases/" + encodeURIComponent(r.id) }, r.id),
        p.train ? [" ", h("a", { class: "chip train-chip", href: "#/trains/" + encodeURIComponent(p.train), title: "a member of train " + p.train }, "train")] : null),
      h("td", {}, r.application),
      h("td", {}, r.environment),
      h("td", {}, r.version),
      h("td", {}, r.flow + " v" + r.flow_version),
      h("td", {}, badge(r.status), r.emergency ? h("span", { class: "badge emergency" }, "emergency") : null),
      h("td", { class: "progress" }, progressCell(r)),
      h("td", {}, r.started_by),
      finished
        ? h("td", { class: "finished" }, time(end), h("br"), h("span", { class: "muted" }, "took " + duration(end - r.created_ms)))
        : h("td", { class: "dur", "data-since": r.created_ms }, duration(now() - r.created_ms)));
  }

  load();
  follow("/api/v1/events", (name, event) => {
    if (name === "lagged" || !event || !event.release) return reload();
    const r = known.get(event.release);
    // A new release, or one whose state changed, may move between the
    // sections or leave the filter: read the list again.
    if (!r || (event.status && event.status !== r.status)) reload();
  }, stop.signal, showLive);
  // Running times and countdowns tick in place, without redrawing the
  // tables.
  const ticker = setInterval(() => {
    for (const cell of body.querySelectorAll("td.dur")) {
      cell.textContent = duration(now() - Number(cell.dataset.since));
    }
    for (const el of body.querySelectorAll("[data-deadline]")) countdown(el);
  }, 1000);
  return () => { stop.abort(); clearInterval(ticker); };
}

/** Where a release stands: a bar of the steps done, the stage, batch and
 * step it is at (or stopped at), and what it waits for. */
function progressCell(r) {
  const p = r.progress;
  const bar = h("div", { class: "bar", title: p.steps_done + " of " + p.steps_total + " steps done" },
    h("div", { class: "bar-done" }));
  bar.firstChild.style.width = (p.steps_total ? Math.round(100 * p.steps_done / p.steps_total) : 0) + "%";
  const place = [];
  if (p.stage) {
    place.push("stage " + p.stage_number + " of " + p.stages + ": " + p.stage);
    if (p.batch) place.push("batch " + p.batch + " of " + p.batches);
    if (p.step) place.push(p.step);
  } else {
    place.push(p.steps_done + " of " + p.steps_total + " steps");
  }
  const waiting = [];
  if (r.status === "waiting-approval") {
    waiting.push(h("span", { class: "gate-wait" }, "waiting at gate",
      p.gate_expires_ms ? [" · ", countdown(h("span", { class: "countdown", "data-deadline": p.gate_expires_ms, "data-phrase": "expires" }))] : null));
  } else if (r.status === "running" && p.bake_until_ms) {
    waiting.push(h("span", {}, "bake ", countdown(h("span", { class: "countdown", "data-deadline": p.bake_until_ms }))));
  }
  return [bar, h("div", { class: "place" }, place.join(" · ")), waiting.length ? h("div", { class: "waiting" }, waiting) : null];
}
