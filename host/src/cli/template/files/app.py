"""{{name}}: a Greenlight check. Every target must answer GET `path` with a
2xx status within `timeout_ms`; all targets are asked at once.

Parameters (text, as a flow gives them): `path` (default "/health") and
`timeout_ms` (default "1000").

Build, test and upload it as README.md says. `wit/greenlight.wit` documents
every type: records are dataclasses with snake_case fields, enums are
`Enum`s such as `VerdictStatus.NO_DATA`. `wasi_get.py` makes the requests:
Python's own `urllib` has no network inside a component.
"""

from wit_world import exports
from wit_world.imports import log
from wit_world.imports.greenlight_plugin_types import Metric, Verdict, VerdictStatus

import wasi_get


class Check(exports.Check):
    def verify(self, ctx, targets):
        params = dict(ctx.parameters)
        path = "/" + params.get("path", "/health").lstrip("/")
        timeout_ms = int(params.get("timeout_ms", "1000"))
        if not targets:
            return Verdict(VerdictStatus.NO_DATA, "no targets to probe", [])

        urls = [f"http://{t.address}{path}" for t in targets]
        unhealthy = []
        for target, answer in zip(targets, wasi_get.get_all(urls, timeout_ms)):
            if isinstance(answer, wasi_get.HttpError):
                unhealthy.append(f"{target.id} ({answer.why})")
            elif not 200 <= answer[0] < 300:
                unhealthy.append(f"{target.id} (HTTP {answer[0]})")

        total = len(targets)
        healthy = total - len(unhealthy)
        log.write(log.Level.INFO, "probed", [("path", path), ("healthy", f"{healthy}/{total}")])
        metrics = [metric("healthy", healthy), metric("unhealthy", len(unhealthy))]
        if unhealthy:
            summary = f"{len(unhealthy)} of {total} targets unhealthy: {', '.join(unhealthy)}"
            return Verdict(VerdictStatus.FAIL, summary, metrics)
        return Verdict(VerdictStatus.PASS, f"{total} of {total} targets answered {path}", metrics)


def metric(name, value):
    # Only the name and the value are required; the other fields are a
    # metric's evidence (a baseline, sample sizes, the range allowed…).
    return Metric(name, float(value), None, None, None, None, None, None, None)
