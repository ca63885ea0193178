// What the checks measured, drawn for the release page: each check of a
// deploy or verify stage, batch by batch, with one small chart per metric
// across its rounds (the canary's value, the baseline's, the range that
// passes shaded, each point coloured by how the metric was judged, sample
// sizes in every point's tooltip and under the chart), and the judge's
// per-metric table of each check's latest verdict for the approval gate.
// Charts are plain SVG drawn here: the UI loads nothing from elsewhere.

import { h, svg, badge, number } from "./lib.js";

// The chart's drawing box, in SVG units; the element scales to its column.
const W = 300;
const H = 140;
const M = { left: 46, right: 8, top: 8, bottom: 20 };

/** Which groups of rounds a person opened or closed, by key, so that the
 * live page's redraws keep their choice. */
const opened = new Map();

const present = (v) => v !== null && v !== undefined;

/** The verdicts of deploy and verify stages as groups of rounds: one group
 * per stage, batch and check, its verdicts in the order they came. */
export function roundGroups(r) {
  const kinds = new Map(r.stages.map((s) => [s.name, s.kind]));
  const groups = new Map();
  for (const o of r.verdicts) {
    const kind = kinds.get(o.stage);
    if (kind !== "deploy" && kind !== "verify") continue;
    const key = [o.stage, present(o.batch) ? o.batch : "", o.check].join("\u0000");
    let group = groups.get(key);
    if (!group) {
      group = { key, stage: o.stage, batch: o.batch, check: o.check, shadow: o.shadow, verdicts: [] };
      groups.set(key, group);
    }
    group.verdicts.push(o);
  }
  return [...groups.values()];
}

/** One series per metric of a group: the metrics with evidence first, in
 * the check's order, then plain ones by name; each point is the metric in
 * that round (with its evidence when it has some), or null. */
function metricSeries(group) {
  const names = [];
  const seen = new Set();
  const add = (name) => {
    if (!seen.has(name)) {
      seen.add(name);
      names.push(name);
    }
  };
  for (const v of group.verdicts) for (const m of v.evidence || []) add(m.name);
  const judged = new Set(names);
  for (const v of group.verdicts) for (const name of Object.keys(v.metrics || {}).sort()) add(name);
  return names.map((name) => ({
    name,
    judged: judged.has(name),
    points: group.verdicts.map((v) => {
      const m = (v.evidence || []).find((e) => e.name === name);
      if (m) return m;
      const value = v.metrics ? v.metrics[name] : undefined;
      return present(value) ? { name, value } : null;
    }),
  }));
}

/** `60 vs 58`, `60`, or `– vs 58`; empty when no size is known. */
export function sampleSizes(m) {
  if (!present(m.samples) && !present(m.baseline_samples)) return "";
  const canary = present(m.samples) ? String(m.samples) : "–";
  return present(m.baseline_samples) ? canary + " vs " + m.baseline_samples : canary;
}

/** `0 .. 0.015`, `≤ 131.4`, `≥ 0.9`, or `–`. */
export function allowedRange(m) {
  const low = present(m.allowed_low);
  const high = present(m.allowed_high);
  if (low && high) return number(m.allowed_low) + " .. " + number(m.allowed_high);
  if (high) return "≤ " + number(m.allowed_high);
  if (low) return "≥ " + number(m.allowed_low);
  return "–";
}

/** A point's tooltip: everything known about the metric in that round. */
function pointTitle(round, m) {
  const lines = ["Round " + round + ": " + number(m.value)];
  if (present(m.baseline)) lines.push("baseline " + number(m.baseline));
  const n = sampleSizes(m);
  if (n) lines.push("n = " + n);
  if (present(m.allowed_low) || present(m.allowed_high)) lines.push("allowed " + allowedRange(m));
  if (m.status) lines.push(m.status + (m.detail ? ": " + m.detail : ""));
  return lines.join("\n");
}

/** The value range a chart spans: every value, baseline and finite bound,
 * with a little room; a range of positive numbers does not dip below 0. */
function span(points) {
  const values = [];
  for (const m of points) {
    if (!m) continue;
    for (const v of [m.value, m.baseline, m.allowed_low, m.allowed_high]) {
      if (present(v) && Number.isFinite(v)) values.push(v);
    }
  }
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  const pad = hi > lo ? (hi - lo) * 0.1 : Math.abs(hi) * 0.1 || 1;
  const floor = lo >= 0 ? 0 : -Infinity;
  return [Math.max(lo - pad, floor), hi + pad];
}

/** A path through the points that are there, broken where one is not. */
function line(coords) {
  let d = "";
  let pen = false;
  for (const c of coords) {
    if (!c) {
      pen = false;
      continue;
    }
    d += (pen ? " L" : " M") + c[0].toFixed(1) + " " + c[1].toFixed(1);
    pen = true;
  }
  return d.trim();
}

/** The allowed range as shaded steps: each round owns a column, and a run
 * of rounds with a range is one shape; an open end reaches the edge. */
function bands(points, x, y, step) {
  const top = M.top;
  const bottom = H - M.bottom;
  const clamp = (v) => Math.min(bottom, Math.max(top, v));
  const shapes = [];
  let run = [];
  const flush = () => {
    if (!run.length) return;
    const upper = [];
    const lower = [];
    for (const i of run) {
      const m = points[i];
      const left = x(i) - step / 2;
      const right = x(i) + step / 2;
      const hiY = clamp(present(m.allowed_high) ? y(m.allowed_high) : top);
      const loY = clamp(present(m.allowed_low) ? y(m.allowed_low) : bottom);
      upper.push([left, hiY], [right, hiY]);
      lower.unshift([right, loY], [left, loY]);
    }
    const d = "M" + upper.concat(lower).map((c) => c[0].toFixed(1) + " " + c[1].toFixed(1)).join(" L") + " Z";
    shapes.push(svg("path", {
      class: "allowed-band", d, "data-rounds": (run[0] + 1) + "-" + (run[run.length - 1] + 1),
    }));
    run = [];
  };
  points.forEach((m, i) => {
    if (m && (present(m.allowed_low) || present(m.allowed_high))) run.push(i);
    else flush();
  });
  flush();
  return shapes;
}

/** One metric across the rounds, as an SVG chart. */
export function chart(series) {
  const points = series.points;
  const n = points.length;
  const [lo, hi] = span(points);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const step = plotW / n;
  const x = (i) => M.left + step * (i + 0.5);
  const y = (v) => M.top + ((hi - v) / (hi - lo)) * plotH;
  const grid = [hi, (hi + lo) / 2, lo].map((v) => [
    svg("line", { class: "grid", x1: M.left, x2: W - M.right, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }),
    svg("text", { class: "tick", x: M.left - 4, y: (y(v) + 4).toFixed(1), "text-anchor": "end", text: number(v) }),
  ]);
  // Every round is labelled while they fit; beyond, every k-th and the last.
  const every = Math.ceil(n / 12);
  const rounds = points.map((_, i) => (i % every === 0 || i === n - 1)
    ? svg("text", { class: "tick", x: x(i).toFixed(1), y: H - 6, "text-anchor": "middle", text: String(i + 1) })
    : null);
  const baseline = points.map((m, i) => (m && present(m.baseline) ? [x(i), y(m.baseline)] : null));
  const canary = points.map((m, i) => (m ? [x(i), y(m.value)] : null));
  const values = points.filter(Boolean).map((m) => number(m.value)).join(", ");
  return svg("svg", {
    class: "chart", viewBox: "0 0 " + W + " " + H, role: "img",
    "aria-label": series.name + " over " + n + (n === 1 ? " round: " : " rounds: ") + values,
  },
  grid.flat(),
  bands(points, x, y, step),
  baseline.some(Boolean) ? svg("path", { class: "baseline-line", d: line(baseline) }) : null,
  baseline.map((c, i) => c ? svg("circle", {
    class: "baseline-point", cx: c[0].toFixed(1), cy: c[1].toFixed(1), r: 2.5,
    "data-round": i + 1, "data-value": points[i].baseline,
  }, svg("title", { text: "Round " + (i + 1) + " baseline: " + number(points[i].baseline) })) : null),
  svg("path", { class: "canary-line", d: line(canary) }),
  canary.map((c, i) => c ? svg("circle", {
    class: "canary-point", cx: c[0].toFixed(1), cy: c[1].toFixed(1), r: 4,
    "data-round": i + 1, "data-value": points[i].value, "data-status": points[i].status || "none",
  }, svg("title", { text: pointTitle(i + 1, points[i]) })) : null),
  rounds);
}

/** A chart with its metric's name, latest status, sample sizes and
 * detail. */
function figure(group, series) {
  const latest = [...series.points].reverse().find(Boolean);
  const n = sampleSizes(latest);
  return h("figure", {
    class: "metric-chart", "data-chart": series.name, "data-check": group.check,
    "data-stage": group.stage, "data-judged": series.judged ? "yes" : "no",
  },
  h("figcaption", { class: "metric-head" },
    h("strong", {}, series.name), " ", latest.status ? badge(latest.status) : null,
    h("span", { class: "muted" }, number(latest.value),
      present(latest.baseline) ? " vs " + number(latest.baseline) : "")),
  chart(series),
  h("p", { class: "metric-foot" },
    n ? h("span", { class: "samples" }, "n = " + n) : null,
    present(latest.allowed_low) || present(latest.allowed_high)
      ? h("span", { class: "muted" }, " · allowed " + allowedRange(latest)) : null,
    latest.detail ? h("span", { class: "detail" }, latest.detail) : null));
}

/** Whether a series is worth a chart: a metric with evidence always is; a
 * plain value only once it has moved between rounds (a count of targets
 * that stays the same says nothing the verdicts table does not). */
function worthDrawing(series) {
  if (series.judged) return true;
  const values = new Set(series.points.filter(Boolean).map((m) => m.value));
  return values.size > 1;
}

/** The section of charts, or null when no check of a deploy or verify stage
 * has measured anything worth drawing. */
export function checkCharts(r) {
  const groups = roundGroups(r)
    .map((g) => ({ group: g, series: metricSeries(g).filter(worthDrawing) }))
    .filter((g) => g.series.length);
  if (!groups.length) return null;
  // The newest batch of each check in each stage starts open; older ones
  // are a click away.
  const newest = new Map(groups.map(({ group }) => [group.stage + "\u0000" + group.check, group.key]));
  return h("section", { class: "card", id: "check-charts" },
    h("h2", {}, "Checks, round by round"),
    h("p", { class: "legend chart-legend muted" },
      h("span", { class: "key key-canary" }, "canary"),
      h("span", { class: "key key-baseline" }, "baseline"),
      h("span", { class: "key key-band" }, "allowed range"),
      h("span", {}, "points coloured by each metric's status; hover one for its evidence")),
    groups.map(({ group, series }) => {
      const last = group.verdicts[group.verdicts.length - 1];
      const fresh = newest.get(group.stage + "\u0000" + group.check) === group.key;
      const details = h("details", {
        class: "round-group", open: opened.has(group.key) ? opened.get(group.key) : fresh,
        "data-stage": group.stage, "data-check": group.check,
        "data-batch": present(group.batch) ? group.batch + 1 : "",
        // Only a choice that differs from the default is kept: a batch that
        // was the newest closes by itself once a newer one starts.
        ontoggle: () => {
          if (details.open === fresh) opened.delete(group.key);
          else opened.set(group.key, details.open);
        },
      },
      h("summary", {},
        h("strong", {}, group.stage), present(group.batch) ? " · batch " + (group.batch + 1) : "",
        " · ", checkName(group), " · ", group.verdicts.length + (group.verdicts.length === 1 ? " round " : " rounds "),
        badge(last.status), " ", h("span", { class: "muted" }, last.summary)),
      h("div", { class: "charts" }, series.map((s) => figure(group, s))));
      return details;
    }));
}

/** A check's name, marked when it runs in the shadow. */
export function checkName(o) {
  return o.shadow
    ? [o.check, " ", h("span", { class: "badge shadow", title: "runs in the shadow: shown, never decides" }, "shadow")]
    : o.check;
}

/** The judge's table for the gate: every metric with evidence in the latest
 * verdict of each check, or null when no check gave any. */
export function judgedTable(r) {
  const latest = new Map();
  for (const o of r.verdicts) latest.set(o.check, o);
  const rows = [...latest.values()].flatMap((o) => (o.evidence || []).map((m) => h("tr", {
    "data-check": o.check, "data-metric": m.name,
  },
  h("td", {}, checkName(o)),
  h("td", {}, m.name),
  h("td", { class: "num" }, number(m.value)),
  h("td", { class: "num" }, present(m.baseline) ? number(m.baseline) : "–"),
  h("td", { class: "num" }, sampleSizes(m) || "–"),
  h("td", { class: "num" }, allowedRange(m)),
  h("td", {}, m.status ? badge(m.status) : "–"),
  h("td", { class: "detail" }, m.detail || ""))));
  if (!rows.length) return null;
  return [
    h("h3", {}, "Judged per metric (latest round of each check)"),
    h("table", { class: "grid judged", id: "judged" },
      h("thead", {}, h("tr", {}, ["Check", "Metric", "Canary", "Baseline", "Samples", "Allowed", "Status", "Detail"]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)),
  ];
}

/** The latest verdict of each check, batch by batch, for the gate: one row
 * each, with a square per round for its trend, the sample sizes it stands
 * on and its metrics; earlier rounds are in the full history. Returns the
 * table and how many of those latest verdicts do not pass (a later round
 * supersedes an earlier failure). */
export function latestTable(r, prior) {
  const groups = roundGroups(r).filter((g) => !g.verdicts.some((v) => v.rollback));
  const latest = groups.map((g) => ({ group: g, last: g.verdicts[g.verdicts.length - 1] }));
  const failing = latest.filter(({ last }) => last.status !== "pass" && !last.shadow).length;
  if (!latest.length) return { table: null, failing, checks: 0 };
  const samples = (v) => {
    const sized = (v.evidence || []).filter((m) => present(m.samples) || present(m.baseline_samples));
    return sized.length ? sized.map((m) => m.name + ": " + sampleSizes(m)).join(", ") : "–";
  };
  // The previous version's latest verdict of the same check, from the
  // release that put it in place: the same stage's when it ran there.
  const before = (g) => {
    if (!prior) return null;
    const same = prior.verdicts.filter((v) => v.check === g.check && !v.rollback);
    return same.filter((v) => v.stage === g.stage).pop() || same.pop() || null;
  };
  const metricChips = (v) => Object.keys(v.metrics || {}).sort().map((k) =>
    h("span", { class: "metric" }, k + " ", h("strong", {}, number(v.metrics[k]))));
  const heads = ["Check", "Where", "Latest", "Trend", "Samples", "Summary", "Metrics"];
  if (prior) heads.push("Previous version (" + prior.version + ")");
  const table = h("table", { class: "grid latest", id: "latest" },
    h("thead", {}, h("tr", {}, heads.map((c) => h("th", {}, c)))),
    h("tbody", {}, latest.map(({ group, last }) => h("tr", { "data-check": group.check, "data-stage": group.stage },
      h("td", {}, checkName(last)),
      h("td", {}, group.stage + (present(group.batch) ? ", batch " + (group.batch + 1) : "")),
      h("td", {}, badge(last.status)),
      h("td", { class: "trend", "data-rounds": group.verdicts.length },
        group.verdicts.map((v, i) => h("span", {
          class: "round s-" + v.status, title: "round " + (i + 1) + ": " + v.status + (v.summary ? ", " + v.summary : ""),
        })),
        h("span", { class: "muted" }, " " + group.verdicts.length + (group.verdicts.length === 1 ? " round" : " rounds"))),
      h("td", { class: "samples" }, samples(last)),
      h("td", {}, last.summary),
      h("td", { class: "metrics" }, metricChips(last)),
      prior ? h("td", { class: "previous" }, ((v) => v
        ? [badge(v.status), " ", metricChips(v), h("div", { class: "muted" }, v.stage + " of ",
          h("a", { href: "#/releases/" + encodeURIComponent(prior.id) }, prior.id))]
        : h("span", { class: "muted" }, "not run then"))(before(group))) : null))));
  return { table, failing, checks: latest.length };
}
