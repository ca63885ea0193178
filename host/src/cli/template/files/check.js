// {{name}}: a Greenlight check. Every target must answer GET `path` with a
// 2xx status within `timeout_ms`; all targets are asked at once.
//
// Parameters (text, as a flow gives them): `path` (default "/health") and
// `timeout_ms` (default "1000").
//
// Build, test and upload it as README.md says. `wit/greenlight.wit`
// documents every type: records are objects with camelCase fields, enums
// are strings such as "pass" or "no-data".

import { write as log } from "greenlight:plugin/log@0.2.0";

export const check = {
  async verify(ctx, targets) {
    const params = Object.fromEntries(ctx.parameters);
    const path = "/" + (params.path ?? "/health").replace(/^\/+/, "");
    const timeoutMs = Number(params.timeout_ms ?? "1000");
    if (targets.length === 0) {
      return { status: "no-data", summary: "no targets to probe", metrics: [] };
    }

    const answers = await Promise.all(
      targets.map((t) => probe(`http://${t.address}${path}`, timeoutMs)),
    );
    const unhealthy = targets
      .map((t, i) => (answers[i] === null ? null : `${t.id} (${answers[i]})`))
      .filter((line) => line !== null);

    const total = targets.length;
    const healthy = total - unhealthy.length;
    log("info", "probed", [["path", path], ["healthy", `${healthy}/${total}`]]);
    const metrics = [
      { name: "healthy", value: healthy },
      { name: "unhealthy", value: unhealthy.length },
    ];
    return unhealthy.length
      ? {
          status: "fail",
          summary: `${unhealthy.length} of ${total} targets unhealthy: ${unhealthy.join(", ")}`,
          metrics,
        }
      : { status: "pass", summary: `${total} of ${total} targets answered ${path}`, metrics };
  },
};

// Null when `url` answers 2xx within `timeoutMs`, else why not. The timer
// settles the race before it aborts the request, so a slow target reads as
// a timeout rather than as the abort.
async function probe(url, timeoutMs) {
  const abort = new AbortController();
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => {
      resolve(`no answer within ${timeoutMs} ms`);
      abort.abort();
    }, timeoutMs);
  });
  const asked = fetch(url, { signal: abort.signal }).then(
    (response) => (response.ok ? null : `HTTP ${response.status}`),
    (error) => String(error.message ?? error),
  );
  try {
    return await Promise.race([asked, late]);
  } finally {
    clearTimeout(timer);
  }
}
