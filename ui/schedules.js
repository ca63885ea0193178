// The schedules page: each schedule's expression and timezone, its next
// fire times, and its last outcome with a link to the release it started.

import { api, h, fill, time, badge, empty, showError } from "./lib.js";

export function render(view) {
  const body = h("div", { id: "schedules" }, h("p", { class: "muted" }, "Loading…"));
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Schedules")), body);
  load(body).catch((e) => {
    if (e.status === 404) fill(body, empty("This daemon has no scheduler."));
    else showError("Schedules cannot be read: " + e.message);
  });
}

async function load(body) {
  const schedules = await api("GET", "/api/v1/schedules");
  if (!schedules.length) {
    fill(body, empty("No schedules yet.", "Add a nightly beta release with `greenlight schedule add`."));
    return;
  }
  const next = await Promise.all(schedules.map((s) =>
    api("GET", "/api/v1/schedules/" + encodeURIComponent(s.id) + "/next?count=3").catch(() => null)));
  fill(body, h("section", { class: "card" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ["Schedule", "Expression", "Timezone", "Releases", "Next fires", "Last outcome", "Enabled"].map((c) => h("th", {}, c)))),
    h("tbody", {}, schedules.map((s, i) => h("tr", { "data-schedule": s.id },
      h("td", {}, s.id),
      h("td", {}, h("code", {}, s.cron)),
      h("td", {}, s.timezone),
      h("td", {}, s.application + " → " + s.environment + " (" + s.flow + ")"),
      h("td", {}, fires(next[i])),
      h("td", {}, s.last ? [badge(s.last.outcome), " ", time(s.last.at_ms),
        s.last.release ? [" ", h("a", { href: "#/releases/" + encodeURIComponent(s.last.release) }, s.last.release)] : null,
        s.last.reason ? h("span", { class: "muted" }, " " + s.last.reason) : null] : "never fired"),
      h("td", {}, s.enabled ? "yes" : "no")))))));
}

function fires(next) {
  const list = next && (next.fires || next);
  if (!Array.isArray(list) || !list.length) return "–";
  return h("ul", { class: "fires" }, list.map((f) => h("li", {}, time(typeof f === "number" ? f : f.at_ms))));
}
