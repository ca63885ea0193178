"""A Greenlight check in Python: copy this file and fill in `verify`.

Build it into a component from this folder:

    componentize-py -d ../../wit -w greenlight:plugin/check-plugin@0.2.0 componentize template -o my-check.wasm

`wit/greenlight.wit` documents every type (records are dataclasses with
snake_case fields, enums are `Enum`s such as `VerdictStatus.NO_DATA`);
`error_budget.py` beside this file is a complete example that calls a
granted HTTP endpoint.
"""

from wit_world import exports
from wit_world.imports import log
from wit_world.imports.greenlight_plugin_types import (
    Metric,
    ReleaseContext,
    Target,
    Verdict,
    VerdictStatus,
)


class Check(exports.Check):
    def verify(self, ctx: ReleaseContext, targets: list[Target]) -> Verdict:
        # Flow parameters arrive as text: `min_targets = 2` becomes "2".
        params = dict(ctx.parameters)
        min_targets = int(params.get("min_targets", "1"))
        log.write(log.Level.INFO, "checking", [("stage", ctx.stage), ("targets", str(len(targets)))])
        status = VerdictStatus.PASS if len(targets) >= min_targets else VerdictStatus.FAIL
        return Verdict(
            status,
            f"{len(targets)} targets (at least {min_targets} wanted)",
            # Only the name and the value are required; the rest of a
            # metric's fields are its evidence (a baseline, sample sizes,
            # the range allowed, its own status and a line of detail).
            [Metric("targets", float(len(targets)), None, None, None, float(min_targets), None, None, None)],
        )
