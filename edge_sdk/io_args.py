"""Command-line flags of the I/O model, shared by bench (and the commands that measure): where each input's batch
axis goes, fixed input shapes, what each output is, decision thresholds and state pairs. Parsing only; the
meaning lives in edge_sdk.io_model, edge_sdk.fidelity and edge_sdk.streaming."""

from __future__ import annotations

import argparse
from typing import Any


def add_io_args(parser: argparse.ArgumentParser, input_shape: bool = True) -> None:
    group = parser.add_argument_group("inputs and outputs (multi-input, dynamic shapes, output kinds, state)")
    if input_shape:
        group.add_argument("--input-shape", action="append", metavar="NAME:DIMS",
                           help="fix an input's dynamic dims, e.g. x:1,3,48,192 (default: dynamic dims take the data's size)")
    group.add_argument("--batch-axis", action="append", metavar="NAME:AXIS",
                       help="where an input's batch axis goes: state:1, or sr:none for no batch axis (default: found from the shapes)")
    group.add_argument("--output-kind", action="append", metavar="NAME:KIND",
                       help="what an output is: class_scores | values | dense_map | sequence | state | "
                            "detections:boxes=0-3,scores=4-,layout=CN (default: inferred from shape and values)")
    group.add_argument("--threshold", action="append", metavar="NAME:VALUE", help="decision threshold of an output (default 0.5)")
    group.add_argument("--state", metavar="IN:OUT,...", help="state pairs carried through each sequence, e.g. h:hn,c:cn (default: found from names)")


def io_settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """BenchSettings keyword arguments from the flags above."""
    from edge_sdk.fidelity import parse_output_kinds
    from edge_sdk.io_model import parse_batch_axes
    from edge_sdk.streaming import parse_state_pairs

    return {
        "batch_axes": parse_batch_axes(getattr(args, "batch_axis", None)),
        "output_kinds": parse_output_kinds(getattr(args, "output_kind", None), getattr(args, "threshold", None)),
        "state_pairs": parse_state_pairs(getattr(args, "state", None)),
    }


def input_shapes_from_args(args: argparse.Namespace) -> dict[str, list[int]]:
    from edge_sdk.models import parse_input_shapes

    return parse_input_shapes(getattr(args, "input_shape", None))
