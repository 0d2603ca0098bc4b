"""``resource_limits``: concurrency, retry and timeout settings are within sane ranges.

The ranges live in the profile (``resource_ranges``) and the judgement is exported
(:func:`judge_limits`, :func:`record_limits`) so ``config_validity`` reuses it
instead of keeping a second copy of the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..appconfig import AppConfig
from ..findings import Findings
from ..model import Outcome
from ..registry import CheckContext, register
from ._common import Origin, lax_number, origin, settings_problem

__all__ = ["LimitJudgement", "judge_limits", "record_limits"]

DEFAULTS: dict[str, Any] = {
    # name → the dotted setting it reads and its inclusive range (seed: 5-20, 3-5, 300-1800 s).
    # Set an entry to null to stop checking it; add entries to check more settings.
    "resource_ranges": {
        "max_concurrent_workflows": {"setting": "max_concurrent_workflows", "min": 5, "max": 20},
        "retry_attempts": {"setting": "resilience.retry.max_attempts", "min": 3, "max": 5},
        "workflow_timeout": {"setting": "workflow_timeout", "min": 300, "max": 1800, "unit": "s"},
    },
}

OK, MISSING, INVALID, OUT_OF_RANGE, BAD_RULE = (
    "ok",
    "missing",
    "invalid",
    "out_of_range",
    "bad_rule",
)


@dataclass(frozen=True)
class LimitJudgement:
    """One limit: where it was read, what it is, and what is wrong with it (``verdict``)."""

    name: str
    setting: str
    value: Any
    source: str | None
    minimum: float | None
    maximum: float | None
    unit: str
    verdict: str
    problem: str = ""

    @property
    def range_text(self) -> str:
        if self.minimum is None or self.maximum is None:
            return "(invalid range)"
        return f"{_num(self.minimum)}-{_num(self.maximum)}{self.unit}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "setting": self.setting,
            "value": self.value,
            "range": self.range_text,
            "verdict": self.verdict,
        }
        if self.source:
            out["source"] = self.source
        return out


def judge_limits(app: AppConfig, ranges: Mapping[str, Any] | None) -> list[LimitJudgement]:
    """Judge every (non-null) entry of ``ranges`` against the app's effective settings."""
    return [_judge(str(name), rule, app) for name, rule in (ranges or {}).items() if rule]


def _judge(name: str, rule: Any, app: AppConfig) -> LimitJudgement:
    rule = rule if isinstance(rule, Mapping) else {}
    setting = str(rule.get("setting") or name)
    lo, hi, unit = rule.get("min"), rule.get("max"), str(rule.get("unit") or "")
    value, source = app.lookup(setting)
    base: dict[str, Any] = {
        "name": name,
        "setting": setting,
        "value": value,
        "source": source,
        "unit": unit,
    }
    if not _is_number(lo) or not _is_number(hi) or lo > hi:
        return LimitJudgement(
            **base,
            minimum=None,
            maximum=None,
            verdict=BAD_RULE,
            problem=f"profile resource_ranges.{name} needs numeric min <= max (got min={lo!r}, max={hi!r})",
        )
    base.update(minimum=float(lo), maximum=float(hi))
    if source is None or value in (None, ""):
        return LimitJudgement(**base, verdict=MISSING, problem=f"{setting} is not set")
    if isinstance(value, str):
        # `workflow_timeout: "600"` is 600 to the app (pydantic parses a numeric string, as
        # it does the same value from the environment): it was NOT_READY "not a number"
        value = lax_number(value)
        base["value"] = value
    if not _is_number(value):
        return LimitJudgement(
            **base, verdict=INVALID, problem=f"{setting} = {value!r} is not a number"
        )
    if math.isinf(value):
        # `.inf` is no limit at all, which is what an absent limit is judged for (NOT_READY);
        # it was "infs is outside the recommended range" (DEGRADED)
        return LimitJudgement(
            **base, verdict=INVALID, problem=f"{setting} = {value} is no limit at all"
        )
    if not lo <= value <= hi:
        span = f"{_num(lo)}-{_num(hi)}{unit}"
        return LimitJudgement(
            **base,
            verdict=OUT_OF_RANGE,
            problem=f"{setting} = {_num(value)}{unit} is outside the recommended range {span}",
        )
    return LimitJudgement(**base, verdict=OK)


def record_limits(
    f: Findings,
    app: AppConfig,
    judgements: Iterable[LimitJudgement],
    *,
    settings_file: str | None = None,
    skip_missing: Iterable[str] = (),
    origins: Callable[[str], Origin] | None = None,
) -> dict[str, Any]:
    """Turn judgements into findings (absent/invalid → fail, out of range → warn).

    ``skip_missing`` names settings the caller already reported as absent. With
    ``origins``, a wrong value's finding names where it comes from and its
    recommendation targets that place (settings file, env file, process environment).
    Returns the per-limit details for the report.
    """
    skip = set(skip_missing)
    where = settings_file or "the settings file"
    for j in judgements:
        env = app.env_name(j.setting)
        if j.verdict == BAD_RULE:
            f.fail(j.problem, f"Fix resource_ranges.{j.name} in the readiness profile")
        elif j.verdict == MISSING and j.setting not in skip:
            f.fail(j.problem, f"Set {j.setting} ({j.range_text}) in {where} or as {env}")
        elif j.verdict in (INVALID, OUT_OF_RANGE) and origins is not None:
            o = origins(j.setting)
            wanted = f"a {'number' if j.verdict == INVALID else 'value'} within {j.range_text}"
            (f.fail if j.verdict == INVALID else f.warn)(j.problem + o.where, o.set_to(wanted))
        elif j.verdict == INVALID:
            f.fail(j.problem, f"Set {j.setting} to a number within {j.range_text}")
        elif j.verdict == OUT_OF_RANGE:
            f.warn(
                j.problem,
                f"Set {j.setting} to a value within {j.range_text} (in {where} or as {env})",
            )
    return {j.name: j.to_dict() for j in judgements}


def _is_number(value: Any) -> bool:
    # NaN is no number: it compares false with every bound, so it was "out of range"
    # (DEGRADED) instead of malformed; an int field refuses it, a float one is useless.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def evaluate(ctx: CheckContext) -> Outcome:
    f = Findings()
    if ctx.app.settings_error:
        settings_problem(f, ctx.app)
        return f.outcome("", subject="Resource limits")
    judgements = judge_limits(ctx.app, ctx.profile.get("resource_ranges"))
    f.details["limits"] = record_limits(
        f,
        ctx.app,
        judgements,
        settings_file=ctx.profile.path_of("settings_file"),
        origins=lambda dotted: origin(ctx, dotted),
    )
    if not judgements:
        f.warn(
            "no resource limits are configured to be checked",
            "Restore resource_ranges in the readiness profile",
        )
    summary = ", ".join(f"{j.setting}={_num(j.value)}{j.unit}" for j in judgements)
    return f.outcome(f"Resource limits are within range ({summary})", subject="Resource limits")


register(
    "resource_limits",
    title="Resource limits",
    description=(
        "Concurrent workflow limit, retry attempts and workflow timeout are set and within the "
        "profile's ranges (default 5-20, 3-5, 300-1800 s): absent → NOT_READY, out of range → DEGRADED."
    ),
    categories=("configuration",),
    suites=("production",),
    defaults=DEFAULTS,
    profile_keys=("resource_ranges", "settings_file"),
    aliases=("resources", "limits"),
    order=130,
)(evaluate)
