// The release page: the stages as a timeline, each check's metrics drawn
// round by round, each batch and target, the traffic split, every verdict
// and decision with its reason, the gate with its evidence (the judge's
// per-metric table among it) next to the approve and reject buttons, and
// the commands a release manager may give. It stays live on the release's
// event stream: events only say that something changed, and a burst of them
// costs one reread of the release.

import {
  api, h, fill, badge, duration, time, now, countdown, follow, coalesce, liveIndicator, empty, showError, clearError,
  canCommand, confirmAction, session, syncClock, FINISHED,
} from "./lib.js";
import { checkCharts, checkName, judgedTable, latestTable } from "./evidence.js";

export function render(view, id) {
  const stop = new AbortController();
  const [live, showLive] = liveIndicator();
  const body = h("div", { id: "release", "data-release": id }, h("p", { class: "muted" }, "Loading…"));
  view.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/releases" }, "← Releases")),
    body,
  );
  let release = null;
  // The release that put the running version in place, read once, for the
  // gate's comparison.
  let prior;

  async function load() {
    try {
      // The release clock may have moved (a manual clock set forward):
      // countdowns follow it, read again with every change.
      [release] = await Promise.all([api("GET", "/api/v1/releases/" + encodeURIComponent(id)), syncClock()]);
      if (release.gate && release.previous_version && prior === undefined) prior = await priorRelease(release);
      draw();
    } catch (e) {
      if (e.status === 404) {
        fill(body, empty("No release " + id + ".", "It may have been mistyped; see the releases page."));
      } else {
        showError("The release cannot be read: " + e.message);
      }
    }
  }
  const reload = coalesce(load, 200);

  function draw() {
    const r = release;
    fill(body,
      header(r, live),
      actions(r, reload),
      r.progress ? progressCard(r) : null,
      r.gate ? gateCard(r, reload, prior) : null,
      r.pause ? h("section", { class: "card notice", id: "paused" },
        h("h2", {}, "Paused"),
        h("p", {}, "Paused by ", h("strong", {}, r.pause.by), " at ", time(r.pause.at_ms), ": ", r.pause.reason || "no reason given")) : null,
      r.rollback ? rollbackCard(r) : null,
      timeline(r),
      checkCharts(r),
      r.weights ? traffic(r.weights) : null,
      targets(r),
      verdicts(r.verdicts),
      decisions(r.decisions),
      approvals(r.approvals),
    );
    tick();
  }

  // Countdowns (bake, next check, gate expiry) and the running time tick
  // in place every second.
  function tick() {
    for (const el of body.querySelectorAll("[data-deadline]")) countdown(el);
    for (const el of body.querySelectorAll("[data-since]")) {
      el.textContent = duration(now() - Number(el.dataset.since));
    }
  }

  load();
  follow("/api/v1/events?release=" + encodeURIComponent(id), (name, event) => {
    live.dataset.last = name;
    if (event && event.seq !== undefined) live.dataset.seq = event.seq;
    reload();
  }, stop.signal, showLive);
  const ticker = setInterval(() => release && tick(), 1000);
  return () => { stop.abort(); clearInterval(ticker); };
}

function header(r, live) {
  const finished = FINISHED.includes(r.status);
  return h("div", { class: "release-head" },
    h("div", { class: "title-row" },
      h("h1", {}, r.application, " → ", r.environment, " ", h("span", { class: "version" }, r.version)),
      h("span", { id: "status" }, badge(r.status)),
      r.emergency ? h("span", { class: "badge emergency" }, "emergency") : null,
      live),
    h("p", { class: "meta" },
      h("code", {}, r.id), " · flow ", h("strong", {}, r.flow + " v" + r.flow_version),
      " · started by ", h("strong", { id: "started-by" }, r.started_by), " at ", time(r.created_ms),
      r.previous_version ? [" · replaces ", h("strong", {}, r.previous_version)] : " · first release",
      r.train ? [" · a member of ", h("a", { id: "train-link", href: "#/trains/" + encodeURIComponent(r.train) }, "train " + r.train)] : null,
      " · ", finished
        ? ["took ", duration((r.finished_ms || r.updated_ms) - r.created_ms)]
        : ["running for ", h("span", { "data-since": r.created_ms }, duration(now() - r.created_ms))],
      r.outcome ? [" · ", h("span", { id: "outcome" }, r.outcome)] : null),
    r.forward_only ? h("p", { class: "warn" },
      "This release contains a step that cannot be undone: automatic rollback stops before it and asks a human.") : null);
}

function command(r, action, body, reload) {
  return async () => {
    await api("POST", "/api/v1/releases/" + encodeURIComponent(r.id) + "/" + action, body());
    clearError();
    reload();
  };
}

function actions(r, reload) {
  // A succeeded release can still be rolled back; the other ends are over.
  if (FINISHED.includes(r.status) && r.status !== "succeeded") return null;
  if (!canCommand()) {
    return h("p", { class: "muted", id: "read-only" },
      "You are signed in as " + session.current.role + ": you can follow this release but not command it.");
  }
  const button = (id, label, cls, options) => h("button", {
    id, class: cls, onclick: () => confirmAction(options),
  }, label);
  const buttons = [];
  // A release waiting at a gate is paused already, in effect: the server
  // pauses only a running one.
  if (r.status === "running") {
    buttons.push(button("pause", "Pause", "", {
      title: "Pause this release?",
      body: "The release stops after the step in progress and waits until someone resumes it.",
      confirmLabel: "Pause",
      run: (comment) => command(r, "pause", () => ({ comment }), reload)(),
    }));
  }
  if (r.status === "paused") {
    buttons.push(button("resume", "Resume", "", {
      title: "Resume this release?",
      body: "The release carries on from where it stopped.",
      confirmLabel: "Resume",
      run: (comment) => command(r, "resume", () => ({ comment }), reload)(),
    }));
  }
  const rollback = (id, label, title, body, extra) => button(id, label, "danger", {
    title, body, confirmLabel: label, danger: true,
    run: (comment) => command(r, "rollback", () => ({ comment, ...extra }), reload)(),
  });
  const deployed = r.targets.filter((t) => t.state !== "pending").length;
  const back = r.previous_version ? "goes back to " + r.previous_version : "is undone";
  if (r.status === "blocked") {
    // The server takes a blocked rollback up again only with force.
    buttons.push(rollback("roll-back-force", "Roll back with force",
      "Roll back this release with force?",
      "The rollback starts again and passes steps that cannot be undone: " +
        "what they changed stays changed. The deployer is asked again to undo each deployed batch.",
      { force: true }));
  } else if (r.status === "rolling-back") {
    // A rollback that will reach a step that cannot be undone may pass it.
    if (r.forward_only && !r.rollback.force) {
      buttons.push(rollback("roll-back-force", "Roll back with force",
        "Roll back with force?",
        "The rollback goes on and passes steps that cannot be undone: what they changed stays changed.",
        { force: true, mode: r.rollback.mode }));
    }
  } else {
    buttons.push(rollback("roll-back", "Roll back", "Roll back this release?",
      "Every deployed batch (" + deployed + " of " + r.targets.length + " targets) " +
        (r.previous_version
          ? back + ", batch by batch in reverse order, each verified before the next."
          : "is undone in reverse order; this is the first release here, so there is no " +
            "previous version to put back, and a deployer that cannot undo a first release " +
            "blocks the rollback (an admin can then abandon it).") +
        " This cannot be cancelled once started."));
  }
  // An emergency rollback undoes every batch at once, without verifying
  // between them; a regular rollback under way may be escalated to one.
  if (r.status !== "blocked" && !(r.rollback && r.rollback.mode === "emergency")) {
    const escalate = r.status === "rolling-back";
    buttons.push(rollback("roll-back-emergency",
      escalate ? "Switch to emergency rollback" : "Emergency rollback",
      escalate ? "Switch to an emergency rollback?" : "Roll back this release in an emergency?",
      "Every deployed batch (" + deployed + " of " + r.targets.length + " targets) " + back +
        " at once, without verifying between batches: for a version doing harm now. " +
        "This cannot be cancelled once started.",
      { mode: "emergency" }));
  }
  if (session.current.role === "admin" && r.status !== "succeeded") {
    buttons.push(button("abandon", "Abandon", "danger", {
      title: "Abandon this release?",
      body: "The release ends where it stands: nothing more is deployed or undone, " +
        r.application + "/" + r.environment + " is freed for the next release, and the version " +
        "running there is recorded as unknown until a release finishes there again.",
      confirmLabel: "Abandon", danger: true,
      commentRequired: true,
      run: (comment) => command(r, "abandon", () => ({ comment }), reload)(),
    }));
  }
  return h("div", { class: "actions", id: "actions" }, buttons);
}

// Why the release is going back, and, when the rollback is blocked, why and
// what a person can do about it.
function rollbackCard(r) {
  const rb = r.rollback;
  const title = {
    "rolling-back": rb.mode === "emergency" ? "Rolling back (emergency)" : "Rolling back",
    "rolled-back": "Rolled back",
    rejected: "Rejected and rolled back",
    blocked: "Rollback blocked: a person must decide",
  }[r.status] || "Rollback (" + r.status + ")";
  const admin = session.current && session.current.role === "admin";
  return h("section", { class: "card danger", id: "rollback", "data-status": r.status },
    h("h2", {}, title),
    h("p", {}, "Requested by ", h("strong", {}, rb.by), " (" + rb.mode + (rb.force ? ", forced" : "") + "): ",
      rb.reason || "no reason given"),
    r.status === "blocked" ? [
      h("p", { id: "blocked-why" }, h("strong", {}, "Why it stopped: "), r.outcome || "the rollback cannot go on."),
      h("p", {}, "Nothing more happens until someone acts. The ways out:"),
      h("ul", { class: "ways-out", id: "ways-out" },
        h("li", {}, h("strong", {}, "Roll back with force"), " once the cause is dealt with: the deployer is asked " +
          "again to undo each deployed batch, and steps that cannot be undone are passed (what they changed stays changed)."),
        h("li", {}, h("strong", {}, "Abandon"), " (an admin) to end the release where it stands and free ",
          r.application + "/" + r.environment, "; what runs there is then recorded as unknown." +
          (admin ? "" : " Ask an admin."))),
    ] : null);
}

/** What the stage after the gate will do, in one line. */
function nextStage(r) {
  const index = r.stages.findIndex((s) => s.name === r.gate.stage);
  const next = r.stages[index + 1];
  if (!next) return "Nothing follows: approving finishes the release.";
  const deploys = next.steps.filter((s) => s.kind === "deploy");
  const shifts = next.steps.filter((s) => s.kind === "shift");
  const targets = new Set(deploys.flatMap((s) => s.targets));
  const parts = [];
  if (deploys.length) {
    parts.push("deploys " + r.version + " to " + targets.size + " of " + r.targets.length +
      " targets in " + deploys.length + (deploys.length === 1 ? " batch" : " batches"));
  }
  if (shifts.length) parts.push("shifts traffic in steps of " + shifts.map((s) => s.percent + "%").join(" → "));
  if (next.steps.some((s) => s.kind === "verify")) parts.push("verifies after each step");
  if (next.steps.some((s) => s.kind === "approval")) parts.push("waits for another approval");
  return "Next: stage “" + next.name + "” (" + next.kind + ") " + (parts.join(", ") || "runs its checks") + ".";
}

/** What an expiry of the gate does, in words. */
function atExpiry(g) {
  return {
    reject: "at expiry the release is rejected and rolled back",
    rollback: "at expiry the release is rolled back",
    wait: "at expiry nothing happens: the gate stays open",
  }[g.on_expiry] || "";
}

/** The last release that succeeded in putting `r`'s previous version in
 * its environment, or null. */
async function priorRelease(r) {
  try {
    const q = new URLSearchParams({ application: r.application, environment: r.environment, status: "succeeded" });
    const list = await api("GET", "/api/v1/releases?" + q);
    const found = list.find((s) => s.version === r.previous_version && s.id !== r.id);
    return found ? await api("GET", "/api/v1/releases/" + encodeURIComponent(found.id)) : null;
  } catch {
    // The comparison is a help; the gate stands without it.
    return null;
  }
}

function gateCard(r, reload, prior) {
  const g = r.gate;
  const mine = session.current;
  const allowed = canCommand() &&
    (mine.role === "admin" || g.roles.length === 0 || g.roles.includes(mine.role)) &&
    (g.starter_may_approve || mine.name !== r.started_by || mine.role === "admin");
  const { table, failing, checks } = latestTable(r, prior);
  const shadows = r.verdicts.filter((v) => v.shadow).length;
  return h("section", { class: "card gate", id: "gate" },
    h("h2", {}, "Waiting for approval: ", g.stage),
    h("p", {},
      "Needs ", h("strong", {}, g.approvers_needed + (g.approvers_needed === 1 ? " approval" : " approvals")),
      g.roles.length ? [" from ", g.roles.join(" or ")] : null,
      g.starter_may_approve ? "" : " (not from " + r.started_by + ", who started it)",
      " · opened ", time(g.opened_ms),
      g.expires_at_ms ? [" · ", h("strong", { class: "countdown", id: "gate-expiry", "data-deadline": g.expires_at_ms, "data-phrase": "expires" }),
        " · ", h("span", { id: "gate-on-expiry" }, atExpiry(g))] : null,
      g.expired ? h("span", { class: "badge s-failed" }, "expired") : null),
    g.instructions ? h("p", { class: "instructions", id: "gate-instructions" }, g.instructions) : null,
    g.links && g.links.length ? h("p", { class: "links", id: "gate-links" }, g.links.map((l) =>
      h("a", { href: l.url, target: "_blank", rel: "noopener noreferrer" }, l.title))) : null,
    g.approvals.length ? h("ul", { class: "approvals" }, g.approvals.map((a) =>
      h("li", {}, h("strong", {}, a.by), a.approved ? " approved" : " rejected", " at ", time(a.at_ms),
        a.comment ? [": ", h("q", {}, a.comment)] : null))) : null,
    allowed ? h("div", { class: "actions" },
      h("button", {
        id: "approve", class: "primary",
        onclick: () => confirmAction({
          title: "Approve “" + g.stage + "”?",
          body: nextStage(r),
          confirmLabel: "Approve",
          run: (comment) => command(r, "approve", () => ({ comment }), reload)(),
        }),
      }, "Approve"),
      h("button", {
        id: "reject", class: "danger",
        onclick: () => confirmAction({
          title: "Reject “" + g.stage + "”?",
          body: "The release stops here and is rolled back. Say why.",
          confirmLabel: "Reject", danger: true,
          commentRequired: true,
          run: (comment) => command(r, "reject", () => ({ comment }), reload)(),
        }),
      }, "Reject"),
      h("span", { class: "next", id: "next-stage" }, nextStage(r)))
      : h("p", { class: "muted", id: "not-approver" },
        canCommand() ? "Your token may not decide this gate." : "Only a release manager can decide this gate."),
    h("div", { class: "evidence", id: "evidence" },
      h("h3", {}, "Evidence"),
      h("p", { id: "evidence-count" },
        checks
          ? checks + (checks === 1 ? " check" : " checks") + ", latest round of each: " +
            (failing ? failing + " not passing" : "all passing") + "."
          : "No check has run yet.",
        shadows ? " " + shadows + " verdicts from checks in the shadow, which never decide." : "",
        r.verdicts.length ? [" ", h("a", { href: "#verdicts", id: "full-history", onclick: (e) => {
          e.preventDefault();
          document.getElementById("verdicts").scrollIntoView();
        } }, "Full history: " + r.verdicts.length + " verdicts, " + r.decisions.length + " decisions ↓")] : null),
      table,
      judgedTable(r)));
}

function stageState(stage) {
  const states = stage.steps.map((s) => s.state);
  if (states.length && states.every((s) => s === "skipped")) return "skipped";
  for (const where of ["current", "failed", "rejected", "stopped"]) {
    if (states.includes(where)) return where;
  }
  if (states.includes("rolled-back")) return "rolled-back";
  if (states.length && states.every((s) => s === "done")) return "done";
  return "pending";
}

function timeline(r) {
  return h("section", { class: "card" },
    h("h2", {}, "Stages"),
    h("ol", { class: "timeline", id: "timeline" }, r.stages.map((stage) => {
      const state = stageState(stage);
      return h("li", { class: "stage stage-" + state, "data-stage": stage.name, "data-state": state },
        h("div", { class: "stage-head" },
          h("strong", {}, stage.name), " ", h("span", { class: "kind" }, stage.kind),
          " ", h("span", { class: "badge st-" + state }, state),
          stage.reversible ? null : h("span", { class: "badge forward" }, "forward-only"),
          stage.unverified ? h("span", { class: "badge unverified" }, "no evidence") : null,
          h("span", { class: "muted right" }, stage.duration_ms !== null && stage.duration_ms !== undefined
            ? duration(stage.duration_ms) : "")),
        // A stage that went on from rounds in which every check measured
        // nothing says so in words, not only with a badge.
        stage.unverified ? h("p", { class: "warn unverified", "data-unverified": stage.name }, stage.unverified) : null,
        stage.steps.length > 1 || stage.steps.some((s) => s.targets.length) ?
          h("ul", { class: "steps" }, stage.steps.map((s) => step(r, s))) : null);
    })));
}

function step(r, s) {
  const what = {
    precheck: "prechecks",
    deploy: "deploy " + r.version + " to " + s.targets.length + (s.targets.length === 1 ? " target" : " targets"),
    verify: "verify " + s.targets.length + (s.targets.length === 1 ? " target" : " targets"),
    shift: "shift " + s.percent + "% of traffic",
    approval: "approval gate",
  }[s.kind] || s.kind;
  // Countdowns only while the release is moving: a stopped release bakes
  // nothing.
  const current = s.state === "current" && r.status === "running";
  // A batch names its targets: the first few, then how many more.
  const named = s.targets.length && (s.kind === "deploy" || s.kind === "verify")
    ? h("span", { class: "step-targets", title: s.targets.join(", ") },
      ": " + s.targets.slice(0, 4).join(", ") + (s.targets.length > 4 ? " +" + (s.targets.length - 4) + " more" : ""))
    : null;
  return h("li", { class: "step", "data-step": s.index },
    s.batch !== null && s.batch !== undefined ? h("span", { class: "batch" }, "batch " + (s.batch + 1)) : null,
    what, named, " ", h("span", { class: "badge st-" + s.state }, s.state),
    current && s.kind === "verify" && r.bake_until_ms
      ? [" · bake ", h("span", { class: "countdown", "data-deadline": r.bake_until_ms })] : null,
    current && r.next_check_ms
      ? [" · next check ", h("span", { class: "countdown", "data-deadline": r.next_check_ms })] : null);
}

// Long-running work under way (a rollout of interface 0.2.0): the plugin's
// latest note, how long the work has taken, and when the stage's progress
// deadline passes.
function progressCard(r) {
  const p = r.progress;
  const place = (pc) => {
    for (const stage of r.stages) {
      for (const s of stage.steps) {
        if (s.index === pc) {
          return stage.name + (s.batch !== null && s.batch !== undefined ? ", batch " + (s.batch + 1) : "");
        }
      }
    }
    return "step " + pc;
  };
  const what = {
    deploy: () => "Deploying " + r.version + " at " + place(p.of.pc),
    shift: () => "Shifting traffic at " + place(p.of.pc),
    rollback: () => "Rolling back " + p.of.pcs.map(place).join(", "),
    "restore-traffic": () => "Restoring traffic",
  }[p.of.work];
  return h("section", { class: "card", id: "progress", "data-work": p.of.work },
    h("h2", {}, (what ? what() : p.of.work) + ": in progress"),
    h("p", { class: "progress-note", "data-note": p.note }, p.note),
    h("p", { class: "muted" },
      "reported ", time(p.updated_ms), " · under way for ", h("span", { "data-since": p.since_ms }),
      " · progress deadline ", h("span", { class: "countdown", "data-deadline": p.deadline_ms })));
}

function traffic(weights) {
  return h("section", { class: "card", id: "traffic" },
    h("h2", {}, "Traffic now"),
    h("div", { class: "split" }, weights.map((w) => {
      const part = h("div", { class: "part g-" + w.group }, w.group + " " + w.percent + "%");
      part.style.flexGrow = String(Math.max(w.percent, 0.5));
      return part;
    })));
}

/** The version a target in `state` runs, as far as the release knows. */
function versionOf(r, state) {
  const old = r.previous_version || "no known version";
  return {
    deploying: old + " → " + r.version,
    deployed: r.version,
    verified: r.version,
  }[state] || old;
}

function targets(r) {
  if (r.targets.length === 0) return null;
  const counts = {};
  for (const t of r.targets) counts[t.state] = (counts[t.state] || 0) + 1;
  return h("section", { class: "card", id: "targets" },
    h("h2", {}, "Targets (" + r.targets.length + ")"),
    h("p", { class: "legend" }, Object.entries(counts).map(([state, n]) =>
      h("span", { class: "chip t-" + state, "data-legend": state }, state + " (" + versionOf(r, state) + "): " + n))),
    h("div", { class: "targets" }, r.targets.map((t) =>
      h("span", {
        class: "target t-" + t.state,
        title: t.id + " (" + t.address + (t.group ? ", " + t.group : "") + "): " + t.state + ", " + versionOf(r, t.state),
        "data-target": t.id,
        "data-state": t.state,
        "data-version": versionOf(r, t.state),
      }, t.id))));
}

function metrics(m) {
  const names = Object.keys(m || {});
  if (!names.length) return "";
  return names.map((k) => k + "=" + (Math.round(m[k] * 1000) / 1000)).join(" ");
}

function verdictTable(list) {
  return h("table", { class: "grid verdicts" },
    h("thead", {}, h("tr", {}, ["When", "Stage", "Batch", "Check", "Verdict", "Summary", "Metrics"].map((c) => h("th", {}, c)))),
    h("tbody", {}, list.map((o) => h("tr", {},
      h("td", {}, time(o.at_ms)),
      h("td", {}, o.stage),
      h("td", {}, o.batch === null || o.batch === undefined ? "–" : String(o.batch + 1)),
      h("td", {}, checkName(o),
        o.rollback ? [" ", h("span", { class: "badge rollback-check", title: "taken while verifying the rollback" }, "rollback check")] : null),
      h("td", {}, badge(o.status)),
      h("td", {}, o.summary),
      h("td", { class: "metrics" }, metrics(o.metrics))))));
}

function verdicts(list) {
  return h("section", { class: "card", id: "verdicts" },
    h("h2", {}, "Verdicts (" + list.length + ")"),
    list.length ? verdictTable(list.slice().reverse()) : h("p", { class: "muted" }, "No check has run yet."));
}

function decisions(list) {
  return h("section", { class: "card", id: "decisions" },
    h("h2", {}, "Decisions (" + list.length + ")"),
    list.length ? h("ul", { class: "decisions" }, list.slice().reverse().map((d) =>
      h("li", {},
        badge(d.ruling), " ", h("span", { class: "reason" }, d.reason),
        d.unverified && !d.reason.includes("verified by nothing")
          ? [" ", h("span", { class: "warn unverified" }, "(" + d.unverified + ")")] : null,
        h("span", { class: "muted" }, " — " + d.by + " at " + d.stage +
          (d.batch === null || d.batch === undefined ? "" : ", batch " + (d.batch + 1)) + ", " + time(d.at_ms)))))
      : h("p", { class: "muted" }, "No decision yet."));
}

function approvals(list) {
  if (!list.length) return null;
  return h("section", { class: "card", id: "approvals" },
    h("h2", {}, "Approvals"),
    h("ul", {}, list.map((a) => h("li", { class: a.approved ? "approved" : "rejected" },
      h("strong", {}, a.by), a.approved ? " approved " : " rejected ", h("em", {}, a.stage), " at ", time(a.at_ms),
      a.comment ? [": ", h("q", {}, a.comment)] : null))));
}
