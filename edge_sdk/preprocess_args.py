"""The preprocessing flags (convert, bench, debug, check-calib) and the spec they give. Parsing only: what the
settings mean and how they are validated lives in edge_sdk.data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_preprocess_args(parser: argparse.ArgumentParser) -> None:
    """The preprocessing flags of convert, bench, debug and check-calib."""
    group = parser.add_argument_group("preprocessing (stored in the artifact's manifest)")
    group.add_argument("--scale", help="multiply raw values, e.g. 1/255")
    group.add_argument("--mean", help="subtract per channel, e.g. 0.485,0.456,0.406")
    group.add_argument("--std", help="divide per channel, e.g. 0.229,0.224,0.225")
    group.add_argument("--layout", choices=["NHWC", "NCHW"], help="layout the model expects")
    group.add_argument("--source-layout", choices=["NHWC", "NCHW"], help="layout of the raw arrays (images are NHWC)")
    group.add_argument("--resize", help="HEIGHT,WIDTH for image folders")
    group.add_argument("--color", choices=["rgb", "grayscale"], help="colour mode for image folders")
    group.add_argument("--preprocess", type=Path, help="JSON file with a preprocessing spec (flags override it)")
    group.add_argument("--input-key", help="name of the input array in a .npz (default: every non-label array)")


def preprocess_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The preprocessing spec the flags above give: a --preprocess JSON file, each flag overriding its key."""
    from edge_sdk.preprocessing import parse_floats, parse_scale
    from edge_sdk.errors import UsageError

    spec: dict[str, Any] = {}
    if args.preprocess:
        if Path(args.preprocess).exists() and not Path(args.preprocess).is_file():
            raise UsageError(f"--preprocess {args.preprocess} is not a regular file", fix="give a JSON file")
        try:
            loaded = json.loads(Path(args.preprocess).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise UsageError(f"--preprocess {args.preprocess} is not a readable JSON file: {error}") from error
        if not isinstance(loaded, dict):
            raise UsageError(f"--preprocess {args.preprocess} must hold a JSON object of settings, not {type(loaded).__name__}", fix='e.g. {"scale": 0.00392156, "layout": "NHWC"}')
        spec.update(loaded)
    resize = parse_floats(args.resize, "--resize")
    overrides = {
        "scale": parse_scale(args.scale),
        "mean": parse_floats(args.mean, "--mean"),
        "std": parse_floats(args.std, "--std"),
        "layout": args.layout,
        "source_layout": args.source_layout,
        "resize": [int(v) for v in resize] if resize else None,
        "color": args.color,
    }
    spec.update({key: value for key, value in overrides.items() if value is not None})
    return spec
