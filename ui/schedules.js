// The schedules page: each schedule's expression and timezone, its next
// fire times in that timezone, its last outcome with a link to the release
// it started, and the freeze windows in force.

import { api, h, fill, time, badge, duration, empty, showError } from "./lib.js";

export function render(view) {
  const body = h("div", { id: "schedules" }, h("p", { class: "muted" }, "Loading…"));
  const freezes = h("div", { id: "freezes" });
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Schedules")), body, freezes);
  api("GET", "/api/v1/freezes").then((windows) => {
    drawFreezes(freezes, windows);
    return load(body, windows);
  }).catch((e) => showError("Schedules cannot be read: " + e.message));
}

async function load(body, windows) {
  const schedules = await api("GET", "/api/v1/schedules");
  if (!schedules.length) {
    fill(body, empty("No schedules yet.", "Add a nightly beta release with `greenlight schedule add`."));
    return;
  }
  const next = await Promise.all(schedules.map((s) =>
    api("GET", "/api/v1/schedules/" + encodeURIComponent(s.name) + "/next?count=3").catch(() => null)));
  fill(body, h("section", { class: "card" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ["Schedule", "Expression", "Ships", "Next fires", "Last outcome", "Policies", "Enabled"]
      .map((c) => h("th", {}, c)))),
    h("tbody", {}, schedules.map((s, i) => h("tr", { "data-schedule": s.name },
      h("td", {}, h("strong", {}, s.name), h("div", { class: "muted" }, "by " + s.created_by)),
      h("td", {}, h("code", {}, s.cron), h("div", { class: "muted" }, s.timezone)),
      h("td", {}, s.application + " → " + s.environment, h("div", { class: "muted" },
        s.flow + " · " + (s.version ? "version " + s.version : "version from " + s.version_url))),
      h("td", { class: "next-fires" }, fires(next[i], s, windows)),
      h("td", { class: "last" }, last(s)),
      h("td", {}, "missed: " + s.missed + (s.catch_up_max ? " (≤" + s.catch_up_max + ")" : ""),
        h("div", {}, "overlap: " + s.overlap)),
      h("td", {}, s.enabled ? badge("enabled") : badge("disabled"))))))));
}

function fires(next, s, windows) {
  if (!next || !next.fires.length) return "–";
  return h("ul", { class: "fires" }, next.fires.map((f) => {
    const frozen = frozenBy(windows, s, f.at_ms);
    return h("li", { title: time(f.at_ms), class: frozen ? "frozen" : null },
      localTime(f.local), frozen ? h("span", { class: "muted" }, " (frozen: " + frozen.name + ")") : null);
  }));
}

/** `2027-01-16T02:00:00+01:00` as the UI writes times, in the schedule's
 * own zone: `2027-01-16 02:00 (+01:00)`. */
function localTime(rfc3339) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.exec(rfc3339 || "");
  if (!m) return rfc3339 || "–";
  return m[1] + " " + m[2] + " (" + (m[3] === "Z" ? "UTC" : m[3]) + ")";
}

/** The one-off deny window, if any, that would stop this fire. Recurring
 * windows are judged by the scheduler when the fire comes. */
function frozenBy(windows, s, at) {
  return windows.find((w) => w.effect === "deny" && w.start_ms !== null && w.start_ms !== undefined &&
    w.start_ms <= at && at < w.end_ms &&
    (!w.application || w.application === s.application) &&
    (!w.environment || w.environment === s.environment));
}

function last(s) {
  const f = s.last_fire;
  if (!f) return h("span", { class: "muted" }, "never fired");
  return [
    badge(f.outcome), " ", time(f.at_ms),
    f.release ? h("div", {}, h("a", { href: "#/releases/" + encodeURIComponent(f.release) }, f.release)) : null,
    f.message ? h("div", { class: "muted" }, (f.reason ? f.reason + ": " : "") + f.message) : null,
  ];
}

function drawFreezes(box, windows) {
  fill(box, h("section", { class: "card" },
    h("h2", {}, "Freeze windows (" + windows.length + ")"),
    windows.length === 0 ? h("p", { class: "muted" }, "No freeze windows: scheduled releases start as planned.") :
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["Window", "Effect", "When", "Applies to", "Reason"].map((c) => h("th", {}, c)))),
        h("tbody", {}, windows.map((w) => h("tr", { "data-freeze": w.name, "data-open": w.open_now ? "yes" : "no" },
          h("td", {}, w.name),
          h("td", {}, badge(w.effect), w.open_now
            ? h("span", { class: "badge open-now", title: "open now, on the daemon's clock" },
              w.effect === "deny" ? "in force now" : "open now")
            : null),
          h("td", {}, w.cron
            ? [h("code", {}, w.cron), " for " + duration(w.duration_ms) + " (" + w.timezone + ")"]
            : time(w.start_ms) + " – " + time(w.end_ms)),
          h("td", {}, (w.application || "every application") + " / " + (w.environment || "every environment")),
          h("td", {}, w.reason)))))));
}
