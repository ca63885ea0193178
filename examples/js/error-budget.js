// An example Greenlight check in JavaScript: is the service within its error
// budget?
//
// It reads the service's request counters from a stats endpoint answering
// `{"requests": 1200, "errors": 6}`: one the flow names (`url`), or the one
// at `path` on every target (`path = "/stats"`), all read at once. It
// compares the error rate with the flow's threshold (`max_error_rate`,
// default 0.05), logs what it saw, and returns the verdict with the numbers
// it is based on. A target that does not answer within `timeout_ms`
// (default 2000) is no data from that target: the verdict stands on the
// others, and is `no-data` when none answered. `fetch` goes out through
// `wasi:http`, so the daemon lets it through only to the hosts in the
// plugin's grant.
//
// Build it into a component from this folder:
//
//     npx jco componentize error-budget.js --wit ../../wit --world-name greenlight:plugin/check-plugin@0.2.0 -o error-budget.wasm

import { write as log } from "greenlight:plugin/log@0.2.0";

/** A request that got no answer in time. */
class Timeout extends Error {}

/**
 * Fetches every URL at once, each given `timeoutMs`: the call waits as long
 * as the slowest, not the sum of them all (a call has one deadline for
 * everything it does). Answers one settled result per URL, in order: a
 * `Response`, or the error it ended in (`Timeout` when it was too slow).
 */
async function fetchAll(urls, timeoutMs) {
  return Promise.all(
    urls.map(async (url) => {
      const abort = new AbortController();
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => {
          // Settled first, so that the race ends in the timeout rather than
          // in the abort that follows (which drops the request).
          reject(new Timeout(`no answer from ${url} within ${timeoutMs} ms`));
          abort.abort();
        }, timeoutMs);
      });
      try {
        const response = await Promise.race([fetch(url, { signal: abort.signal }), late]);
        return { response, body: await Promise.race([response.text(), late]) };
      } catch (error) {
        return { error };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

export const check = {
  async verify(ctx, targets) {
    const params = Object.fromEntries(ctx.parameters);
    const maxErrorRate = Number(params.max_error_rate ?? "0.05");
    const timeoutMs = Number(params.timeout_ms ?? "2000");
    if (!params.url && !params.path) {
      return verdict("error", "the parameter `url` is missing, and so is `path` to read on every target");
    }
    if (!Number.isFinite(maxErrorRate)) {
      return verdict("error", `max_error_rate \`${params.max_error_rate}\` is not a number`);
    }
    if (!Number.isFinite(timeoutMs)) {
      return verdict("error", `timeout_ms \`${params.timeout_ms}\` is not a number`);
    }
    const sources = params.url
      ? [[params.url, params.url]]
      : targets.map((t) => [t.id, `http://${t.address}/${params.path.replace(/^\//, "")}`]);
    if (sources.length === 0) return verdict("no-data", "no targets to read");

    let requests = 0;
    let errors = 0;
    const silent = [];
    const answers = await fetchAll(sources.map(([, url]) => url), timeoutMs);
    for (const [i, answer] of answers.entries()) {
      const [name, source] = sources[i];
      if (answer.error instanceof Timeout) {
        silent.push(name);
        continue;
      }
      try {
        if (answer.error) throw answer.error;
        if (answer.response.status !== 200) {
          return verdict("error", `${source} answered ${answer.response.status}`);
        }
        const stats = JSON.parse(answer.body);
        if (!Number.isFinite(stats.requests) || !Number.isFinite(stats.errors)) {
          throw new Error("the stats lack `requests` and `errors`");
        }
        requests += stats.requests;
        errors += stats.errors;
      } catch (e) {
        // A check that cannot measure says so; it never guesses a pass.
        log("error", "cannot read the stats", [["source", source], ["error", String(e)]]);
        return verdict("error", `cannot read the stats of ${name}: ${e}`);
      }
    }
    if (silent.length > 0) {
      log("warn", "no answer in time", [["from", silent.join(", ")], ["timeout_ms", String(timeoutMs)]]);
    }
    if (silent.length === sources.length) {
      return verdict("no-data", `no answer within ${timeoutMs} ms from ${silent.join(", ")}`);
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
    // Said only when some target was silent, so that a single `url` reads
    // as it always has.
    const missing = silent.length
      ? `; no data from ${silent.join(", ")} (no answer within ${timeoutMs} ms)`
      : "";
    const over = `over ${requests} requests${missing}`;
    if (silent.length) metrics.push({ name: "silent_targets", value: silent.length });
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
