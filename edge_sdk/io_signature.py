"""The I/O facts a converter writes into the manifest beyond names, dtypes and shapes: each input's batch axis
(found from the data where the shape leaves a doubt), each output's kind where the shape alone says it, and the
state pairs of a stateful model. bench reads them back (flags override them)."""

from __future__ import annotations

from typing import Any

from edge_sdk.errors import DataError


def annotate_io(record: dict[str, Any], data: Any = None) -> None:
    """Fill `batch_axis` of each input, `kind` of each output and `state_pairs` in a converter's manifest record
    (its `signature` / `io` lists of {name, shape, dtype}); `data` (a Dataset) shows how samples are shaped."""
    from edge_sdk.fidelity import infer_kind
    from edge_sdk.io_model import infer_batch_axis
    from edge_sdk.streaming import detect_state_pairs

    io = record.get("io") or record.get("signature") or {}
    inputs, outputs = io.get("inputs") or [], io.get("outputs") or []
    pairs = detect_state_pairs([(t["name"], t["shape"]) for t in inputs], [(t["name"], t["shape"]) for t in outputs])
    record["state_pairs"] = [list(pair) for pair in pairs]
    sample = next(iter(data.samples([0])), None) if data is not None else None
    for tensor in inputs:
        shape = tensor["shape"]
        tensor["batch_axis"] = None if not shape else 0
        array = sample.inputs.get(tensor["name"]) if sample is not None else None
        if array is None and sample is not None and len(inputs) == 1 and len(sample.inputs) == 1:
            array = next(iter(sample.inputs.values()))
        if array is not None:
            try:
                tensor["batch_axis"] = infer_batch_axis(shape, tuple(array.shape))
            except DataError:
                pass  # the converter's own data check names the mismatch
    state_outputs = frozenset(output for _, output in pairs)
    input_axes = {tensor["name"]: tensor["batch_axis"] for tensor in inputs}
    paired_axes = {output: input_axes.get(state_input) for state_input, output in pairs}
    for tensor in outputs:
        shape = tensor["shape"]
        tensor["batch_axis"] = paired_axes[tensor["name"]] if tensor["name"] in paired_axes else (0 if shape else None)
        per_sample = tuple(d for d in shape[1:]) if shape else ()
        if tensor["name"] in state_outputs:
            tensor["kind"] = "state"
        elif all(d is not None for d in per_sample):
            kind = infer_kind(tensor["name"], tuple(int(d) for d in per_sample))  # type: ignore[arg-type]
            # Shape alone settles single values and score vectors; maps and sequences need values (bench infers them).
            tensor["kind"] = kind if kind in ("values", "class_scores") else None
