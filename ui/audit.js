// The audit log page: every state-changing request, allowed or not, newest
// first, filterable by release, actor and time range.

import { api, h, fill, time, badge, empty, showError } from "./lib.js";

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
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Audit log")), form, body);

  async function load() {
    const q = new URLSearchParams({ limit: "200" });
    if (fields.release.value.trim()) q.set("release", fields.release.value.trim());
    if (fields.actor.value.trim()) q.set("actor", fields.actor.value.trim());
    if (fields.since.value) q.set("since_ms", String(Date.parse(fields.since.value + "Z")));
    if (fields.until.value) q.set("until_ms", String(Date.parse(fields.until.value + "Z")));
    try {
      const entries = await api("GET", "/api/v1/audit?" + q);
      // Says which filter the table shows, for readers and for tests.
      body.dataset.query = q.toString();
      fill(body, entries.length === 0 ? empty("No entries match.") :
        h("section", { class: "card" }, h("table", { class: "grid" },
          h("thead", {}, h("tr", {}, ["When", "Actor", "Action", "Target", "From", "Outcome", "Comment"].map((c) => h("th", {}, c)))),
          h("tbody", {}, entries.map((e) => h("tr", {},
            h("td", {}, time(e.at_ms)),
            h("td", {}, e.actor, e.role ? h("span", { class: "muted" }, " (" + e.role + ")") : null),
            h("td", {}, h("code", {}, e.action)),
            h("td", {}, e.release ? h("a", { href: "#/releases/" + encodeURIComponent(e.release) }, e.target) : e.target),
            h("td", {}, e.from || "–"),
            h("td", {}, badge(e.outcome), " ", String(e.status), e.code ? h("span", { class: "muted" }, " " + e.code) : null),
            h("td", {}, e.comment || "")))))));
    } catch (e) {
      showError("The audit log cannot be read: " + e.message);
    }
  }
  load();
}
