"""An example Greenlight check in Python: is the service within its error budget?

It reads the service's request counters from a stats endpoint answering
`{"requests": 1200, "errors": 6}`: one the flow names (`url`), or the one
at `path` on every target (`path = "/stats"`), all read at once. It
compares the error rate with the flow's threshold (`max_error_rate`,
default 0.05), logs what it saw, and returns the verdict with the numbers
it is based on. A target that does not answer within `timeout_ms` (default
2000) is no data from that target: the verdict stands on the others, and
is `no-data` when none answered.

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
        url, path = params.get("url"), params.get("path")
        if not url and not path:
            return verdict(VerdictStatus.ERROR, "the parameter `url` is missing, and so is `path` to read on every target")
        try:
            max_error_rate = float(params.get("max_error_rate", "0.05"))
        except ValueError:
            return verdict(VerdictStatus.ERROR, f"max_error_rate `{params['max_error_rate']}` is not a number")
        try:
            timeout_ms = int(params.get("timeout_ms", "2000"))
        except ValueError:
            return verdict(VerdictStatus.ERROR, f"timeout_ms `{params['timeout_ms']}` is not a whole number")
        if url:
            sources = [(url, url)]
        else:
            sources = [(t.id, f"http://{t.address}/{path.lstrip('/')}") for t in targets]
        if not sources:
            return verdict(VerdictStatus.NO_DATA, "no targets to read")

        requests = errors = 0
        silent = []
        answers = wasi_get.get_all([u for _, u in sources], timeout_ms)
        for (name, source), answer in zip(sources, answers):
            if isinstance(answer, wasi_get.HttpError) and answer.timeout:
                silent.append(name)
                continue
            try:
                if isinstance(answer, wasi_get.HttpError):
                    raise answer
                status, body = answer
                if status != 200:
                    return verdict(VerdictStatus.ERROR, f"{source} answered {status}")
                stats = json.loads(body)
                requests += int(stats["requests"])
                errors += int(stats["errors"])
            except Exception as e:
                # A check that cannot measure says so; it never guesses a pass.
                log.write(log.Level.ERROR, "cannot read the stats", [("source", source), ("error", str(e))])
                return verdict(VerdictStatus.ERROR, f"cannot read the stats of {name}: {describe(e)}")
        if silent:
            log.write(log.Level.WARN, "no answer in time", [("from", ", ".join(silent)), ("timeout_ms", str(timeout_ms))])
        if len(silent) == len(sources):
            return verdict(VerdictStatus.NO_DATA, f"no answer within {timeout_ms} ms from {', '.join(silent)}")

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
        # Said only when some target was silent, so that a single `url`
        # reads as it always has.
        missing = f"; no data from {', '.join(silent)} (no answer within {timeout_ms} ms)" if silent else ""
        if silent:
            metrics.append(metric("silent_targets", float(len(silent))))
        log.write(
            log.Level.INFO,
            "measured the error rate",
            [("stage", ctx.stage), ("error_rate", f"{rate:.4f}"), ("requests", str(requests))],
        )
        if rate > max_error_rate:
            return verdict(
                VerdictStatus.FAIL,
                f"error_rate {rate:.2%} > {max_error_rate:.2%} over {requests} requests{missing}",
                metrics,
            )
        return verdict(
            VerdictStatus.PASS,
            f"error_rate {rate:.2%} <= {max_error_rate:.2%} over {requests} requests{missing}",
            metrics,
        )


def verdict(status: VerdictStatus, summary: str, metrics: list[Metric] | None = None) -> Verdict:
    return Verdict(status, summary, metrics or [])


def describe(e: Exception) -> str:
    """An exception in words: its message, with its kind when that helps."""
    if isinstance(e, (wasi_get.HttpError, ValueError)) and str(e):
        return str(e)
    if isinstance(e, KeyError):
        return f"the answer has no {e}"
    return f"{type(e).__name__}: {e}"


def metric(name: str, value: float) -> Metric:
    """A measurement without evidence: every other field of `Metric` is optional."""
    return Metric(name, value, None, None, None, None, None, None, None)
