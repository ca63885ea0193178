// The audit log page: every state-changing request, allowed or not, newest
// first, filterable by release, actor and time range, read a page at a
// time (the API's `next_before` cursor) with a button for older entries.

import { api, h, fill, time, badge, empty, showError } from "./lib.js";

const PAGE = 200;

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

  function row(e) {
    return h("tr", { "data-seq": String(e.seq) },
      h("td", {}, time(e.at_ms)),
      h("td", {}, e.actor, e.role ? h("span", { class: "muted" }, " (" + e.role + ")") : null),
      h("td", {}, h("code", {}, e.action)),
      h("td", {}, e.release ? h("a", { href: "#/releases/" + encodeURIComponent(e.release) }, e.target) : e.target),
      h("td", {}, e.from || "–"),
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
          h("thead", {}, h("tr", {}, ["When", "Actor", "Action", "Target", "From", "Outcome", "Comment"].map((c) => h("th", {}, c)))),
          rows), more));
    } catch (e) {
      showError("The audit log cannot be read: " + e.message);
    }
  }
  load();
}
