// The plugins page: every uploaded plugin version with its kind and digest,
// and for each plugin its grant (hosts, configuration, secret names, limits)
// and the flows that use it. Secrets are write-only: only their names show.

import { api, h, fill, time, empty, showError } from "./lib.js";

export function render(view) {
  const body = h("div", { id: "plugins" }, h("p", { class: "muted" }, "Loading…"));
  view.append(h("div", { class: "title-row" }, h("h1", {}, "Plugins")), body);
  load(body).catch((e) => showError("Plugins cannot be read: " + e.message));
}

async function load(body) {
  const versions = await api("GET", "/api/v1/plugins");
  if (!versions.length) {
    fill(body, empty("No plugins yet.", "Upload one with `greenlight plugin push FILE.wasm`."));
    return;
  }
  const names = [...new Set(versions.map((p) => p.name))];
  const details = await Promise.all(names.map((n) => api("GET", "/api/v1/plugins/" + encodeURIComponent(n))));
  fill(body, ...details.map(card));
}

/** Where a grant lets a plugin send requests, in words. */
function outbound(g) {
  const hosts = g.allowed_hosts.join(", ");
  if (!g.allow_release_targets) return hosts || "none";
  return (hosts ? hosts + ", and " : "") + "the targets of its releases";
}

function card(d) {
  const g = d.grant;
  const limits = Object.entries(g.limits || {}).map(([k, v]) => k + " " + v);
  return h("section", { class: "card plugin", "data-plugin": d.name },
    h("h2", {}, d.name),
    h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["Version", "Kind", "Digest", "Size", "Uploaded"].map((c) => h("th", {}, c)))),
      h("tbody", {}, d.versions.map((v) => h("tr", {},
        h("td", {}, v.version), h("td", {}, v.kind),
        h("td", {}, h("code", { title: v.digest }, v.digest.slice(0, 19) + "…")),
        h("td", {}, Math.round(v.size_bytes / 1024) + " KiB"),
        h("td", {}, time(v.uploaded_at_ms) + " by " + v.uploaded_by))))),
    h("dl", { class: "grant" },
      h("dt", {}, "Outbound HTTP"), h("dd", {}, outbound(g)),
      h("dt", {}, "Configuration"), h("dd", {}, Object.keys(g.config).join(", ") || "none"),
      h("dt", {}, "Secrets"), h("dd", {}, g.secret_names.join(", ") || "none"),
      h("dt", {}, "Limits"), h("dd", {}, limits.join(", ") || "the daemon's defaults"),
      h("dt", {}, "Used by flows"), h("dd", { class: "used-by" }, d.used_by.join(", ") || "none")));
}
