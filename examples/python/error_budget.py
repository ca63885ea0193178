"""An example Greenlight check in Python: is the service within its error budget?

It reads the service's request counters from a stats endpoint the flow
names (`url`, answering `{"requests": 1200, "errors": 6}`), compares the
error rate with the flow's threshold (`max_error_rate`, default 0.05), logs
what it saw, and returns the verdict with the numbers it is based on.

Build it into a component from this folder:

    componentize-py -d ../../wit -w greenlight:plugin/check-plugin@0.2.0 componentize error_budget -o error-budget.wasm
"""

import json

from wit_world import exports
from wit_world.imports import log
from wit_world.imports.greenlight_plugin_types import (
    Metric,
    ReleaseContext,
    Target,
    Verdict,
    VerdictStatus,
)

import wasi_get


class Check(exports.Check):
    def verify(self, ctx: ReleaseContext, targets: list[Target]) -> Verdict:
        params = dict(ctx.parameters)
        url = params.get("url")
        if not url:
            return verdict(VerdictStatus.ERROR, "the parameter `url` is missing")
        try:
            max_error_rate = float(params.get("max_error_rate", "0.05"))
        except ValueError:
            return verdict(VerdictStatus.ERROR, f"max_error_rate `{params['max_error_rate']}` is not a number")
        try:
            status, body = wasi_get.get(url, int(params.get("timeout_ms", "2000")))
            if status != 200:
                return verdict(VerdictStatus.ERROR, f"{url} answered {status}")
            stats = json.loads(body)
            requests, errors = int(stats["requests"]), int(stats["errors"])
        except Exception as e:
            # A check that cannot measure says so; it never guesses a pass.
            log.write(log.Level.ERROR, "cannot read the stats", [("error", repr(e))])
            return verdict(VerdictStatus.ERROR, f"cannot read the stats: {e!r}")

        if requests == 0:
            return verdict(VerdictStatus.NO_DATA, "no requests served yet")
        rate = errors / requests
        metrics = [
            # The error rate with its evidence: the requests it stands on and
            # the highest rate that passes, which the release page draws.
            Metric(
                "error_rate",
                rate,
                baseline=None,
                samples=requests,
                baseline_samples=None,
                allowed_low=None,
                allowed_high=max_error_rate,
                status=None,
                detail=None,
            ),
            metric("requests", float(requests)),
            metric("errors", float(errors)),
        ]
        log.write(
            log.Level.INFO,
            "measured the error rate",
            [("stage", ctx.stage), ("error_rate", f"{rate:.4f}"), ("requests", str(requests))],
        )
        if rate > max_error_rate:
            return verdict(
                VerdictStatus.FAIL,
                f"error_rate {rate:.2%} > {max_error_rate:.2%} over {requests} requests",
                metrics,
            )
        return verdict(
            VerdictStatus.PASS,
            f"error_rate {rate:.2%} <= {max_error_rate:.2%} over {requests} requests",
            metrics,
        )


def verdict(status: VerdictStatus, summary: str, metrics: list[Metric] | None = None) -> Verdict:
    return Verdict(status, summary, metrics or [])


def metric(name: str, value: float) -> Metric:
    """A measurement without evidence: every other field of `Metric` is optional."""
    return Metric(name, value, None, None, None, None, None, None, None)
