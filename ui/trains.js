// The trains pages: every train with its state, and one train's dependency
// graph with each application's state, drawn in dependency order from left
// to right.

import {
  api, h, fill, svg, badge, time, follow, coalesce, empty, showError, clearError, canCommand, confirmAction,
} from "./lib.js";

export function render(view) {
  const body = h("div", { id: "trains" }, h("p", { class: "muted" }, "Loading…"));
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Trains")), body);
  api("GET", "/api/v1/trains").then((trains) => {
    if (!trains.length) {
      fill(body, empty("No trains yet.", "A train ships several applications in dependency order (`POST /api/v1/trains`)."));
      return;
    }
    fill(body, h("section", { class: "card" }, h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["Train", "Name", "State", "Applications", "Started by", "Started"].map((c) => h("th", {}, c)))),
      h("tbody", {}, trains.map((t) => h("tr", { "data-train": t.id },
        h("td", {}, h("a", { href: "#/trains/" + encodeURIComponent(t.id) }, t.id)),
        h("td", {}, t.name),
        h("td", {}, badge(t.status), attention(t)),
        h("td", {}, t.order.join(" → ")),
        h("td", {}, t.started_by),
        h("td", {}, time(t.created_ms))))))));
  }).catch((e) => showError("Trains cannot be read: " + e.message));
}

export function renderOne(view, id) {
  const stop = new AbortController();
  const body = h("div", { id: "train" }, h("p", { class: "muted" }, "Loading…"));
  view.append(h("p", { class: "crumbs" }, h("a", { href: "#/trains" }, "← Trains")), body);
  let train = null;
  let places = new Map();
  async function load() {
    try {
      const [t, releases] = await Promise.all([
        api("GET", "/api/v1/trains/" + encodeURIComponent(id)),
        api("GET", "/api/v1/releases").catch(() => []),
      ]);
      train = t;
      places = new Map(releases.map((r) => [r.id, r]));
      draw();
    } catch (e) {
      if (e.status === 404) fill(body, empty("No train " + id + "."));
      else showError("The train cannot be read: " + e.message);
    }
  }
  const reload = coalesce(load, 250);
  function draw() {
    const t = train;
    fill(body,
      h("div", { class: "title-row" }, h("h1", {}, "Train ", t.name), badge(t.status), attention(t)),
      h("p", { class: "meta" }, h("code", {}, t.id), " · started by ", t.started_by, " at ", time(t.created_ms),
        t.rollback_requested ? " · rollback requested: unwinding in reverse dependency order" : ""),
      t.problem ? h("p", { class: "warn", id: "train-problem" }, t.problem) : null,
      trainActions(t, reload),
      h("section", { class: "card" }, h("h2", {}, "Dependency graph"), graph(t, places)),
      h("section", { class: "card" }, h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["Application", "Environment", "Version", "Depends on", "State", "Release"].map((c) => h("th", {}, c)))),
        h("tbody", {}, t.members.map((m) => h("tr", {},
          h("td", {}, m.application), h("td", {}, m.environment), h("td", {}, m.version),
          h("td", {}, m.depends_on.join(", ") || "–"), h("td", {}, badge(m.status)),
          h("td", {}, m.release ? h("a", { href: "#/releases/" + encodeURIComponent(m.release) }, m.release) : "–")))))));
  }
  load();
  // A member's release events change the train's picture.
  follow("/api/v1/events", (name, event) => {
    if (!train || name === "lagged" || train.members.some((m) => m.release === event.release) || !event.release) reload();
  }, stop.signal);
  return () => stop.abort();
}

/** The members that need a person, or are held, as badges beside the
 * train's own state: a train is "running" while a member waits at a gate
 * or is blocked, which says too little. */
function attention(t) {
  const who = (status) => t.members.filter((m) => m.status === status).map((m) => m.application);
  const marks = [
    [who("blocked"), "blocked", " blocked: a person must decide"],
    [who("waiting-approval"), "waiting-approval", " waiting for approval"],
    [who("paused"), "paused", " paused"],
  ];
  return marks.filter(([apps]) => apps.length).map(([apps, status, words]) =>
    h("span", { class: "badge s-" + status, "data-attention": status }, apps.join(", ") + words));
}

/** Where a member's release stands, in a node's third line. */
function memberPlace(m, places) {
  const r = m.release && places.get(m.release);
  if (!r) return m.status === "waiting" ? "waits for " + (m.depends_on.join(", ") || "its turn") : "";
  const p = r.progress;
  if (!p || !p.stage) return p ? p.steps_done + " of " + p.steps_total + " steps" : "";
  return "stage " + p.stage_number + "/" + p.stages + ": " + p.stage + (p.batch ? " · batch " + p.batch + "/" + p.batches : "");
}

/** Rolling the whole train back, for those who may command releases, while
 * there is something to roll back. */
function trainActions(t, reload) {
  if (!canCommand() || t.rollback_requested || t.status === "rolled-back") return null;
  const shipped = t.members.filter((m) => m.release).map((m) => m.application);
  // Dependents go back before what they depend on: the reverse of the order.
  const order = t.order.filter((app) => shipped.includes(app)).reverse();
  return h("div", { class: "actions", id: "train-actions" }, h("button", {
    id: "roll-back-train", class: "danger",
    onclick: () => confirmAction({
      title: "Roll back train “" + t.name + "”?",
      body: "Every member that started is rolled back, dependents first: " +
        (order.join(" → ") || "none has started yet") + ". Members not started yet never start. " +
        "This cannot be cancelled once started.",
      confirmLabel: "Roll back the train", danger: true,
      run: async (comment) => {
        await api("POST", "/api/v1/trains/" + encodeURIComponent(t.id) + "/rollback", { comment });
        clearError();
        reload();
      },
    }),
  }, "Roll back the train"));
}

/** Lays the members out in columns by dependency depth, with an arrow from
 * each dependency to its dependent. */
function graph(t, places) {
  const byApp = new Map(t.members.map((m) => [m.application, m]));
  const depth = new Map();
  const depthOf = (app, seen = new Set()) => {
    if (depth.has(app)) return depth.get(app);
    if (seen.has(app)) return 0;
    seen.add(app);
    const m = byApp.get(app);
    const d = m && m.depends_on.length
      ? 1 + Math.max(...m.depends_on.map((dep) => depthOf(dep, seen)))
      : 0;
    depth.set(app, d);
    return d;
  };
  const columns = [];
  for (const app of t.order.length ? t.order : [...byApp.keys()]) {
    const d = depthOf(app);
    (columns[d] = columns[d] || []).push(app);
  }
  const W = 190, H = 72, GX = 70, GY = 22;
  const pos = new Map();
  columns.forEach((apps, x) => apps.forEach((app, y) => pos.set(app, { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
  const width = 20 + columns.length * (W + GX) - GX;
  const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const edges = [];
  for (const m of t.members) {
    for (const dep of m.depends_on) {
      const a = pos.get(dep), b = pos.get(m.application);
      if (!a || !b) continue;
      edges.push(svg("line", {
        x1: a.x + W, y1: a.y + H / 2, x2: b.x - 6, y2: b.y + H / 2, class: "edge", "marker-end": "url(#arrow)",
      }));
    }
  }
  const nodes = t.members.map((m) => {
    const p = pos.get(m.application);
    return svg("g", { class: "node s-" + m.status, "data-app": m.application, transform: "translate(" + p.x + "," + p.y + ")" },
      svg("rect", { width: W, height: H, rx: 6 }),
      svg("text", { x: 10, y: 21, class: "app", text: m.application }),
      svg("text", { x: 10, y: 41, class: "state", text: m.version + " · " + m.status }),
      svg("text", { x: 10, y: 60, class: "place", text: memberPlace(m, places) }));
  });
  return svg("svg", { class: "graph", width, height, viewBox: "0 0 " + width + " " + height, role: "img" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
    edges, nodes);
}
