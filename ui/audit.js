// The audit log page: every state-changing request, allowed or not, newest
// first, filterable by release, actor and time range, read a page at a
// time (the API's `next_before` cursor) with a button for older entries.

import { api, h, fill, time, badge, empty, showError, canCommand, session } from "./lib.js";

const PAGE = 200;

/** What each route does, in words; `{…}` parts are read from the path. */
const WORDS = [
  ["POST /api/v1/session", "signed in"],
  ["DELETE /api/v1/session", "signed out"],
  ["POST /api/v1/releases", "started a release"],
  ["POST /api/v1/releases/{id}/resume", "resumed the release"],
  ["POST /api/v1/releases/{id}/rollback", "rolled the release back"],
  ["POST /api/v1/releases/{id}/abandon", "abandoned the release"],
  ["POST /api/v1/releases/{id}/{action}", (path) => ({
    approve: "approved the gate", reject: "rejected the gate", pause: "paused the release",
  })[last(path)] || last(path) + " (release command)"],
  ["POST /api/v1/clock", "moved the release clock"],
  ["POST /api/v1/trains", "started a train"],
  ["POST /api/v1/trains/plan", "planned a train"],
  ["POST /api/v1/trains/{id}/rollback", (path) => "rolled train " + segment(path, 3) + " back"],
  ["POST /api/v1/plugins", "uploaded a plugin"],
  ["PUT /api/v1/plugins/{name}/grant", (path) => "granted plugin " + segment(path, 3)],
  ["PATCH /api/v1/plugins/{name}/grant", (path) => "changed the grant of plugin " + segment(path, 3)],
  ["PUT /api/v1/plugins/{name}/owners", (path) => "set the owners of plugin " + segment(path, 3)],
  ["POST /api/v1/plugins/{name}/{version}/invoke", (path) => "invoked plugin " + segment(path, 3) + "@" + segment(path, 4)],
  ["POST /api/v1/plugins/{name}/{version}/approve", (path) => "approved plugin " + segment(path, 3) + "@" + segment(path, 4)],
  ["POST /api/v1/flows", "applied a flow"],
  ["POST /api/v1/flows/{name}/plan", (path) => "planned flow " + segment(path, 3)],
  ["PUT /api/v1/apps/{app}/envs/{env}", (path) => "set the inventory of " + segment(path, 3) + "/" + segment(path, 5)],
  ["DELETE /api/v1/apps/{app}/envs/{env}", (path) => "deleted the inventory of " + segment(path, 3) + "/" + segment(path, 5)],
  ["POST /api/v1/tokens", "created a token"],
  ["DELETE /api/v1/tokens", "revoked a token"],
  ["DELETE /api/v1/tokens/{name}", (path) => "revoked token " + segment(path, 3)],
  ["POST /api/v1/analysis/replay", "replayed an analysis"],
  ["POST /api/v1/schedules", "added a schedule"],
  ["DELETE /api/v1/schedules/{name}", (path) => "deleted schedule " + segment(path, 3)],
  ["POST /api/v1/schedules/{name}/enable", (path) => "enabled schedule " + segment(path, 3)],
  ["POST /api/v1/schedules/{name}/disable", (path) => "disabled schedule " + segment(path, 3)],
  ["POST /api/v1/freezes", "added a freeze window"],
  ["DELETE /api/v1/freezes/{name}", (path) => "deleted freeze window " + segment(path, 3)],
];

const parts = (path) => path.split("?")[0].split("/").filter(Boolean).map(decodeURIComponent);
const segment = (path, i) => parts(path)[i] || "?";
const last = (path) => { const p = parts(path); return p[p.length - 1] || "?"; };

/** An entry's action in words, or its route when it has none. */
export function actionWords(e) {
  const found = WORDS.find(([route]) => route === e.action);
  if (!found) return null;
  return typeof found[1] === "function" ? found[1](e.target) : found[1];
}

/** `127.0.0.1:53122` → `127.0.0.1`: the client's port says nothing. */
function host(from) {
  if (!from) return "–";
  const bracket = from.match(/^\[(.*)\]:\d+$/);
  if (bracket) return bracket[1];
  const plain = from.match(/^([^:]+):\d+$/);
  return plain ? plain[1] : from;
}

export function render(view) {
  const fields = {
    release: h("input", { id: "audit-release", placeholder: "any" }),
    actor: h("input", { id: "audit-actor", placeholder: "any" }),
    since: h("input", { id: "audit-since", type: "datetime-local" }),
    until: h("input", { id: "audit-until", type: "datetime-local" }),
  };
  const body = h("div", { id: "audit" }, h("p", { class: "muted" }, "Loading…"));
  const form = h("form", { class: "filters", id: "audit-filters" },
    h("label", { class: "filter" }, "Release", fields.release),
    h("label", { class: "filter" }, "Actor", fields.actor),
    h("label", { class: "filter" }, "From (UTC)", fields.since),
    h("label", { class: "filter" }, "To (UTC)", fields.until),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  if (!canCommand()) {
    view.append(h("div", { class: "title-row" }, h("h1", {}, "Audit log")),
      empty("The audit log is for release managers and admins.",
        "You are signed in as " + (session.current ? session.current.role : "nobody") + "."));
    return;
  }
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Audit log")), form, body);

  function row(e) {
    const words = actionWords(e);
    return h("tr", { "data-seq": String(e.seq) },
      h("td", {}, time(e.at_ms)),
      h("td", {}, e.actor, e.role ? h("span", { class: "muted" }, " (" + e.role + ")") : null),
      h("td", { class: "action", title: e.action + " (" + e.target + ")" }, words || h("code", {}, e.action)),
      h("td", { class: "release" }, e.release ? h("a", { href: "#/releases/" + encodeURIComponent(e.release) }, e.release) : "–"),
      h("td", { title: e.from || "" }, host(e.from)),
      h("td", {}, badge(e.outcome), " ", String(e.status), e.code ? h("span", { class: "muted" }, " " + e.code) : null),
      h("td", {}, e.comment || ""));
  }

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (fields.release.value.trim()) q.set("release", fields.release.value.trim());
    if (fields.actor.value.trim()) q.set("actor", fields.actor.value.trim());
    if (fields.since.value) q.set("since_ms", String(Date.parse(fields.since.value + "Z")));
    if (fields.until.value) q.set("until_ms", String(Date.parse(fields.until.value + "Z")));
    const rows = h("tbody", {});
    const more = h("button", { type: "button", id: "audit-older" }, "Older entries");
    let next = null;
    async function page() {
      const p = new URLSearchParams(q);
      if (next !== null) p.set("before", String(next));
      const answer = await api("GET", "/api/v1/audit?" + p);
      rows.append(...answer.entries.map(row));
      next = answer.next_before ?? null;
      more.hidden = next === null;
      return answer.entries.length;
    }
    more.addEventListener("click", async () => {
      more.disabled = true;
      try { await page(); } catch (e) {
        showError("The audit log cannot be read: " + e.message);
      } finally { more.disabled = false; }
    });
    try {
      await page();
      // Says which filter the table shows, for readers and for tests.
      body.dataset.query = q.toString();
      fill(body, rows.children.length === 0 && next === null ? empty("No entries match.") :
        h("section", { class: "card" }, h("table", { class: "grid" },
          h("thead", {}, h("tr", {}, ["When", "Actor", "Action", "Release", "From", "Outcome", "Comment"].map((c) => h("th", {}, c)))),
          rows), more));
    } catch (e) {
      showError("The audit log cannot be read: " + e.message);
    }
  }
  load();
}
