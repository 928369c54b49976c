"""The accuracy gate: an artifact passes when the upper bound of its accuracy drop's 95 % interval against the
float reference is within the budget (`--max-drop POINTS`). Judging the bound, not the point estimate, means a
pass is a statement about the model, not about a lucky evaluation subset."""

from __future__ import annotations

from typing import Any

from edge_sdk import stats
from edge_sdk.errors import EdgeSdkError, UsageError

GATE_EXIT_CODE = 10


class AccuracyGateError(EdgeSdkError):
    """One or more artifacts lost more accuracy than the budget allows."""

    exit_code = GATE_EXIT_CODE


def gate_record(drop: stats.Interval, max_drop_points: float, accuracy: float) -> dict[str, Any]:
    """The `reference.gate` record of a result: verdict, the figures it rests on, and a precision warning when
    the evaluation set is too small to tell a drop of the budget's size from no drop at all."""
    if max_drop_points < 0:
        raise UsageError(f"--max-drop {max_drop_points} must not be negative (points of top-1 accuracy)")
    record: dict[str, Any] = {
        "max_drop_points": max_drop_points,
        "drop_points": drop.estimate,
        "drop_upper_points": drop.high,
        "passed": drop.high <= max_drop_points,
        "precision_warning": None,
    }
    if drop.half_width > max_drop_points / 2.0:
        # Half the budget: an interval wider than that cannot pass a model whose true drop is half the budget.
        needed = stats.samples_for_half_width(accuracy, max(max_drop_points / 2.0, 0.05))
        record["precision_warning"] = (
            f"the drop is known to +-{drop.half_width:.2f} points, more than half the {max_drop_points:g}-point budget; "
            f"evaluate on about {needed} samples or more"
        )
    return record


def gate_failures(results: list[Any]) -> list[str]:
    """One line per failed gate, naming the artifact and the figures (results are BenchResult or dicts)."""
    lines = []
    for result in results:
        payload = result if isinstance(result, dict) else result.to_dict()
        gate = (payload.get("reference") or {}).get("gate")
        if gate and not gate["passed"]:
            lines.append(
                f"{payload['artifact']['path']}: accuracy drop {gate['drop_points']:.2f} points "
                f"(95 % upper bound {gate['drop_upper_points']:.2f}) exceeds --max-drop {gate['max_drop_points']:g}"
            )
    return lines


def check_gate(results: list[Any]) -> None:
    """Raise AccuracyGateError (exit code 10) when any result failed its accuracy gate."""
    failures = gate_failures(results)
    if failures:
        raise AccuracyGateError("accuracy gate failed:\n  " + "\n  ".join(failures), fix="keep sensitive layers in float with `edge-sdk debug --max-drop`, or check the calibration data with `edge-sdk check-calib`")
