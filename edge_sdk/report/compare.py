"""Compare two results files artifact by artifact (matched by artifact name and target) and gate CI on thresholds.

Exit code: a crossed threshold raises RegressionError, whose exit code is 9 (`REGRESSION_EXIT_CODE`); the CLI
prints the change table first, then one line per regression.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import DataError, EdgeSdkError, UsageError
from edge_sdk.report.markdown import md_escape as _md_escape
from edge_sdk.report.markdown import md_table
from edge_sdk.report.model import target_label
from edge_sdk.results import load_results

REGRESSION_EXIT_CODE = 9


class RegressionError(EdgeSdkError):
    """A compare crossed a threshold: latency, accuracy, or an artifact that failed or disappeared."""

    exit_code = REGRESSION_EXIT_CODE


def parse_percent(text: str | float | None, flag: str = "--max-latency-regression") -> float | None:
    """'10%' or '10' -> 10.0 (percent); None stays None."""
    if text is None:
        return None
    raw = str(text).strip()
    try:
        value = float(raw[:-1] if raw.endswith("%") else raw)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a percentage", fix=f"write it as e.g. {flag} 10%") from None
    if value < 0:
        raise UsageError(f"{flag} {text!r} must not be negative")
    return value


@dataclass
class ArtifactChange:
    """One artifact present in both files; None where a figure is missing on either side."""

    name: str
    target: str
    baseline: dict[str, Any]
    new: dict[str, Any]
    regressions: list[str] = field(default_factory=list)

    def figure(self, side: str, key: str) -> float | None:
        result = self.baseline if side == "baseline" else self.new
        if result.get("status") != "ok":
            return None
        if key == "size_bytes":
            return result["artifact"].get("size_bytes")
        if key == "top1":
            return (result.get("accuracy") or {}).get("top1")
        return ((result.get("timing") or {}).get("latency") or {}).get(key)

    def relative_change_percent(self, key: str) -> float | None:
        before, after = self.figure("baseline", key), self.figure("new", key)
        if before is None or after is None or before == 0:
            return None
        return 100.0 * (after - before) / before

    def accuracy_change_points(self) -> float | None:
        before, after = self.figure("baseline", "top1"), self.figure("new", "top1")
        return None if before is None or after is None else 100.0 * (after - before)


@dataclass
class Comparison:
    baseline_path: str
    new_path: str
    max_latency_regression_percent: float | None
    max_accuracy_drop_points: float | None
    changes: list[ArtifactChange]
    only_in_baseline: list[tuple[str, str]]
    only_in_new: list[tuple[str, str]]

    @property
    def regressions(self) -> list[str]:
        """One line per crossed threshold, naming the artifact and the target."""
        lines = [f"{change.name} on {change.target}: {reason}" for change in self.changes for reason in change.regressions]
        lines += [f"{name} on {target}: missing from {self.new_path} (present in the baseline)" for name, target in self.only_in_baseline]
        return lines

    def raise_for_regressions(self) -> None:
        regressions = self.regressions
        if regressions:
            raise RegressionError(
                f"{len(regressions)} regression{'s' if len(regressions) > 1 else ''} from {self.baseline_path} to {self.new_path}:\n"
                + "\n".join(f"  - {line}" for line in regressions)
            )

    def to_text(self) -> str:
        """The change table for a terminal: the same table with plain names (no Markdown escapes)."""
        return self.to_markdown(escape=lambda text: str(text))

    def to_markdown(self, escape: Any = None) -> str:
        """The change table, pasteable into a pull request (`escape`: how names are written; Markdown by default)."""
        md_escape = escape or _md_escape
        header = ["artifact", "target", "size KB", "p50 ms", "p99 ms", "top-1 %", "verdict"]
        rows = []
        for change in self.changes:
            rows.append([
                md_escape(change.name),
                md_escape(change.target),
                _pair(change, "size_bytes", "{:,.1f}", 1 / 1024),
                _pair(change, "p50_ms", "{:.3f}"),
                _pair(change, "p99_ms", "{:.3f}"),
                _accuracy_pair(change),
                md_escape("REGRESSION: " + "; ".join(change.regressions)) if change.regressions else "ok",
            ])
        rows += [[md_escape(n), md_escape(t), "", "", "", "", "missing from the new results: REGRESSION"] for n, t in self.only_in_baseline]
        rows += [[md_escape(n), md_escape(t), "", "", "", "", "new (no baseline)"] for n, t in self.only_in_new]
        limits = []
        if self.max_latency_regression_percent is not None:
            limits.append(f"p50 latency +{self.max_latency_regression_percent:g}%")
        if self.max_accuracy_drop_points is not None:
            limits.append(f"top-1 accuracy -{self.max_accuracy_drop_points:g} points")
        gate = "thresholds: " + (", ".join(limits) if limits else "none (pass --max-latency-regression / --max-accuracy-drop to gate)")
        title = f"Compare {md_escape(self.baseline_path)} (baseline) -> {md_escape(self.new_path)} (new); {gate}"
        return title + "\n\n" + md_table(header, rows, [False, False, True, True, True, True, False]) + "\n"


def compare_files(
    baseline: Path, new: Path, *, max_latency_regression_percent: float | None = None, max_accuracy_drop_points: float | None = None
) -> Comparison:
    """Load (and validate) both results files and compare them."""
    return compare_documents(
        load_results(baseline), load_results(new), baseline_label=str(baseline), new_label=str(new),
        max_latency_regression_percent=max_latency_regression_percent, max_accuracy_drop_points=max_accuracy_drop_points,
    )


def compare_documents(
    baseline: dict[str, Any],
    new: dict[str, Any],
    *,
    baseline_label: str = "baseline",
    new_label: str = "new",
    max_latency_regression_percent: float | None = None,
    max_accuracy_drop_points: float | None = None,
) -> Comparison:
    """Match results by (artifact name, target); mark each threshold crossed (p50 latency, top-1 accuracy, failure)."""
    before, after = _by_key(baseline, baseline_label), _by_key(new, new_label)
    changes = []
    for key, base_result in before.items():
        if key not in after:
            continue
        change = ArtifactChange(key[0], key[1], base_result, after[key])
        if base_result.get("status") == "ok" and after[key].get("status") != "ok":
            error_lines = str(after[key].get("error") or "no error message").splitlines() or ["no error message"]
            change.regressions.append(f"the benchmark failed in the new results: {error_lines[0]}")
        latency_change = change.relative_change_percent("p50_ms")
        if latency_change is not None and not math.isfinite(latency_change):  # NaN passes every `>`: fail closed
            change.regressions.append(f"p50 latency is not a finite number ({change.figure('baseline', 'p50_ms')} -> {change.figure('new', 'p50_ms')})")
            latency_change = None
        if max_latency_regression_percent is not None and latency_change is not None and latency_change > max_latency_regression_percent:
            change.regressions.append(f"p50 latency +{latency_change:.1f}% (limit +{max_latency_regression_percent:g}%)")
        accuracy_change = change.accuracy_change_points()
        if accuracy_change is not None and not math.isfinite(accuracy_change):
            change.regressions.append("top-1 accuracy is not a finite number")
            accuracy_change = None
        if max_accuracy_drop_points is not None and accuracy_change is not None and -accuracy_change > max_accuracy_drop_points:
            change.regressions.append(f"top-1 accuracy {accuracy_change:+.2f} points (limit -{max_accuracy_drop_points:g} points)")
        changes.append(change)
    return Comparison(
        baseline_label, new_label, max_latency_regression_percent, max_accuracy_drop_points, changes,
        only_in_baseline=[key for key in before if key not in after], only_in_new=[key for key in after if key not in before],
    )


def _by_key(document: dict[str, Any], label: str) -> dict[tuple[str, str], dict[str, Any]]:
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for result in document["results"]:
        key = (str(result["artifact"].get("name")), target_label(result["target"]))
        if key in results:
            raise DataError(
                f"{label} has two results for {key[0]} on {key[1]}; compare matches artifacts by name and target",
                fix="benchmark artifacts with distinct file names",
            )
        results[key] = result
    return results


def _pair(change: ArtifactChange, key: str, pattern: str, scale: float = 1.0) -> str:
    before, after = change.figure("baseline", key), change.figure("new", key)
    if before is None and after is None:
        return "-"
    text = f"{_fmt(before, pattern, scale)} -> {_fmt(after, pattern, scale)}"
    relative = change.relative_change_percent(key)
    return text + (f" ({relative:+.1f}%)" if relative is not None else "")


def _accuracy_pair(change: ArtifactChange) -> str:
    before, after = change.figure("baseline", "top1"), change.figure("new", "top1")
    if before is None and after is None:
        return "-"
    points = change.accuracy_change_points()
    return f"{_fmt(before, '{:.2f}', 100)} -> {_fmt(after, '{:.2f}', 100)}" + (f" ({points:+.2f} pts)" if points is not None else "")


def _fmt(value: float | None, pattern: str, scale: float) -> str:
    return "-" if value is None else pattern.format(value * scale)
