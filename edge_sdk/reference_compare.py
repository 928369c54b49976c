"""An artifact's outputs against its float reference's on the same samples: fidelity of every output by its kind,
accuracy against labels and the accuracy drop with its interval (and the gate on it). Pure functions over
`Evaluation` records; running either model is edge_sdk.bench's and edge_sdk.reference_eval's work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk import metrics, stats
from edge_sdk.bench_io import check_labels
from edge_sdk.errors import DataError
from edge_sdk.fidelity import compare_outputs, primary_fidelity


@dataclass
class Evaluation:
    """Every selected sample run once through one model (an artifact or its float reference)."""

    outputs: np.ndarray  # the primary (first) output, one row per sample: accuracy against labels reads it
    labels: np.ndarray | None
    first_inference_ms: float
    cache: str = "computed"  # float references only: "reused" when taken from REFERENCE_OUTPUTS
    # Every output by name, one row per sample (fidelity compares each by its kind); None where not collected.
    all_outputs: dict[str, np.ndarray] | None = None
    # Stateful models (edge_sdk.streaming): the state pairs used, and every output with the model carrying its
    # own state through each sequence of the data.
    state_pairs: list[tuple[str, str]] | None = None
    streaming_outputs: dict[str, np.ndarray] | None = None


def _top1_correct(evaluation: Evaluation) -> np.ndarray | None:
    outputs = evaluation.outputs.reshape(evaluation.outputs.shape[0], -1)
    if evaluation.labels is None or outputs.shape[1] < 2:
        return None
    return np.argmax(outputs, axis=1) == evaluation.labels


def accuracy_record(evaluation: Evaluation, seed: int = 0) -> dict[str, Any] | None:
    """Top-1 (with its bootstrap interval) and top-5 of the primary output against the labels; None without labels."""
    outputs = evaluation.outputs.reshape(evaluation.outputs.shape[0], -1)
    if evaluation.labels is None or outputs.shape[1] < 2:
        return None
    check_labels(evaluation.labels, outputs.shape[1])
    accuracy: dict[str, Any] = {"samples": int(outputs.shape[0]), "top1": metrics.topk_accuracy(outputs, evaluation.labels, 1)}
    accuracy["top1_ci"] = stats.accuracy_interval(_top1_correct(evaluation), seed=seed).to_dict()  # type: ignore[arg-type]
    if outputs.shape[1] > 5:
        accuracy["top5"] = metrics.topk_accuracy(outputs, evaluation.labels, 5)
    return accuracy


def compare_to_reference(references: Any, reference: Evaluation, evaluation: Evaluation, settings: Any) -> dict[str, Any]:
    """The `reference` record of a result: `references` is the edge_sdk.reference_eval.ReferenceCache that computed
    `reference`; `settings` the bench's BenchSettings (output kinds, seed, accuracy gate). (edge_sdk.bench imports
    this module: its BenchSettings is `Any` here, so no import circle.)"""
    if reference.outputs.shape != evaluation.outputs.shape:
        raise DataError(f"reference {references.name}: its outputs have shape {reference.outputs.shape[1:]} per sample, the artifact's {evaluation.outputs.shape[1:]}",
                        fix="give the float model this artifact was converted from as --reference")
    payload: dict[str, Any] = {
        "path": references.source_text,
        "runtime": references.description,
        "cache": reference.cache,
        "fidelity": primary_fidelity(evaluation.outputs, reference.outputs),
    }
    given = settings.output_kinds
    if evaluation.state_pairs:
        given = dataclasses.replace(given, state_outputs=frozenset(output for _, output in evaluation.state_pairs))
        payload["state_pairs"] = [list(pair) for pair in evaluation.state_pairs]
    if reference.all_outputs and evaluation.all_outputs:
        # Every output, each by its kind (edge_sdk.fidelity): never pooled, never only the first. Per step: each
        # model got the state recorded in the data.
        payload["outputs"] = compare_outputs(evaluation.all_outputs, reference.all_outputs, given)
    primary = (payload.get("outputs") or {}).get(next(iter(reference.all_outputs or {}), ""))
    if primary and primary.get("kind") not in (None, "class_scores"):
        # Top-1 over a flattened map or a regressor is no figure of that output (its kind's figures are in `outputs`).
        payload["fidelity"]["top1_agreement"] = None
    if reference.streaming_outputs and evaluation.streaming_outputs:
        # Streaming: each model carried its own state through each sequence.
        payload["streaming"] = {"outputs": compare_outputs(evaluation.streaming_outputs, reference.streaming_outputs, given)}
    reference_accuracy = accuracy_record(reference, settings.seed)
    artifact_accuracy = accuracy_record(evaluation, settings.seed)
    if reference_accuracy is not None and artifact_accuracy is not None:
        payload["accuracy"] = reference_accuracy
        payload["accuracy_drop_points"] = 100.0 * (reference_accuracy["top1"] - artifact_accuracy["top1"])
        drop = stats.paired_drop_interval(_top1_correct(reference), _top1_correct(evaluation), seed=settings.seed)  # type: ignore[arg-type]
        payload["accuracy_drop_ci_points"] = drop.to_dict()
        if settings.max_drop_points is not None:
            from edge_sdk.gate import gate_record

            payload["gate"] = gate_record(drop, settings.max_drop_points, artifact_accuracy["top1"])
    return payload
