// A Greenlight check in JavaScript: copy this file and fill in `verify`.
//
// Build it into a component from this folder:
//
//     npx jco componentize template.js --wit ../../wit --world-name greenlight:plugin/check-plugin@0.2.0 -o my-check.wasm
//
// `wit/greenlight.wit` documents every type (records are objects with
// camelCase fields, enums are strings such as "pass" or "no-data");
// `error-budget.js` beside this file is a complete example that calls a
// granted HTTP endpoint with `fetch`.

import { write as log } from "greenlight:plugin/log@0.2.0";

export const check = {
  // `verify` may be async: `await fetch(...)` works inside it.
  async verify(ctx, targets) {
    // Flow parameters arrive as text: `min_targets = 2` becomes "2".
    const params = Object.fromEntries(ctx.parameters);
    const minTargets = Number(params.min_targets ?? "1");
    log("info", "checking", [["stage", ctx.stage], ["targets", String(targets.length)]]);
    const status = targets.length >= minTargets ? "pass" : "fail";
    return {
      status,
      summary: `${targets.length} targets (at least ${minTargets} wanted)`,
      metrics: [{ name: "targets", value: targets.length }],
    };
  },
};
