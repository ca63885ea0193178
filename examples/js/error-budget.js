// An example Greenlight check in JavaScript: is the service within its error
// budget?
//
// It reads the service's request counters from a stats endpoint the flow
// names (`url`, answering `{"requests": 1200, "errors": 6}`), compares the
// error rate with the flow's threshold (`max_error_rate`, default 0.05),
// logs what it saw, and returns the verdict with the numbers it is based on.
// `fetch` goes out through `wasi:http`, so the daemon lets it through only to
// the hosts in the plugin's grant.
//
// Build it into a component from this folder:
//
//     npx jco componentize error-budget.js --wit ../../wit --world-name greenlight:plugin/check-plugin@0.2.0 -o error-budget.wasm

import { write as log } from "greenlight:plugin/log@0.2.0";

export const check = {
  async verify(ctx, targets) {
    const params = Object.fromEntries(ctx.parameters);
    const maxErrorRate = Number(params.max_error_rate ?? "0.05");
    if (!params.url) return verdict("error", "the parameter `url` is missing");
    if (!Number.isFinite(maxErrorRate)) {
      return verdict("error", `max_error_rate \`${params.max_error_rate}\` is not a number`);
    }
    let requests, errors;
    try {
      const response = await fetch(params.url);
      if (response.status !== 200) {
        return verdict("error", `${params.url} answered ${response.status}`);
      }
      ({ requests, errors } = await response.json());
      if (!Number.isFinite(requests) || !Number.isFinite(errors)) {
        throw new Error("the stats lack `requests` and `errors`");
      }
    } catch (e) {
      // A check that cannot measure says so; it never guesses a pass.
      log("error", "cannot read the stats", [["error", String(e)]]);
      return verdict("error", `cannot read the stats: ${e}`);
    }

    if (requests === 0) return verdict("no-data", "no requests served yet");
    const rate = errors / requests;
    const metrics = [
      // The error rate with its evidence: the requests it stands on and the
      // highest rate that passes, which the release page draws. Optional
      // fields left out are none.
      { name: "error_rate", value: rate, samples: BigInt(requests), allowedHigh: maxErrorRate },
      { name: "requests", value: requests },
      { name: "errors", value: errors },
    ];
    log("info", "measured the error rate", [
      ["stage", ctx.stage],
      ["error_rate", rate.toFixed(4)],
      ["requests", String(requests)],
    ]);
    const seen = `error_rate ${percent(rate)}`;
    const over = `over ${requests} requests`;
    return rate > maxErrorRate
      ? verdict("fail", `${seen} > ${percent(maxErrorRate)} ${over}`, metrics)
      : verdict("pass", `${seen} <= ${percent(maxErrorRate)} ${over}`, metrics);
  },
};

function verdict(status, summary, metrics = []) {
  return { status, summary, metrics };
}

function percent(x) {
  return `${(x * 100).toFixed(2)}%`;
}
