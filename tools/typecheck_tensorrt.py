"""Type-check the TensorRT modules with mypy against tensorrt-stubs, so a misspelled or misused TensorRT call fails CI.

TensorRT itself cannot be installed here (its pip package fetches NVIDIA's libraries), so this is the only
check the TensorRT path gets in CI. The stubs wheel is installed with --no-deps into STUBS_DIR
(default .venv/tensorrt-stubs; `make typecheck-tensorrt` does it). Two defects of the published stubs are
repaired in a copy before mypy reads them:
- syntax: plugin methods with a parameter named `in` (a Python keyword) are renamed `in_`, and
  `INetworkDefinition.add_scale_nd`'s `channel_axis` (no default, after defaulted ones) gets a default;
- the module constant `bool: DataType` (TensorRT's `trt.bool`) shadows the builtin, which made every
  `-> bool` in the stubs invalid (mypy then treats those results as Any): annotations say `builtins.bool`.
Errors inside the stubs themselves are not reported (tools/mypy-tensorrt.ini); only our use of them is.
The stub folder has no py.typed marker, so it goes on MYPYPATH instead of being found in site-packages.

Usage: python tools/typecheck_tensorrt.py [FILE ...]   (default: the TensorRT modules); exits with mypy's status.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUBS_DIR = Path(os.environ.get("EDGE_SDK_TENSORRT_STUBS", REPO / ".venv" / "tensorrt-stubs"))
CONFIG = REPO / "tools" / "mypy-tensorrt.ini"
MODULES = ("converters/tensorrt.py", "targets/runners/tensorrt.py", "targets/tensorrt_build.py", "targets/tensorrt_remote.py", "targets/tensorrt_fingerprint.py")
STUB_FILES = ("tensorrt/__init__.pyi", "tensorrt_bindings/__init__.pyi", "tensorrt_bindings/tensorrt.pyi")
REPAIRS = (
    (re.compile(r"\bin: list\["), "in_: list["),
    (re.compile(r"(power: Weights = None, channel_axis: int)\)"), r"\1 = ...)"),
    (re.compile(r"(?<=[\s\[(,|])bool\b(?!: DataType)"), "builtins.bool"),
    (re.compile(r"^import typing$", re.MULTILINE), "import builtins\nimport typing"),
)


def repaired_stubs(target: Path) -> Path:
    """Copy the installed stubs into `target`, repair them, and check every file parses."""
    missing = [name for name in STUB_FILES if not (STUBS_DIR / name).exists()]
    if missing:
        sys.exit(f"tensorrt-stubs not found in {STUBS_DIR} ({', '.join(missing)} missing)\n"
                 f"  fix: {sys.executable} -m pip install --no-deps --target {STUBS_DIR} -r requirements/tensorrt-stubs.txt  (or: make typecheck-tensorrt)")
    for name in STUB_FILES:
        text = (STUBS_DIR / name).read_text()
        for pattern, replacement in REPAIRS:
            text = pattern.sub(replacement, text)
        ast.parse(text, filename=name)  # a new stubs release with new defects fails here, by name
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text)
    return target


def run_mypy(files: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="trt-stubs-") as scratch:
        stubs = repaired_stubs(Path(scratch))
        env = {**os.environ, "MYPYPATH": str(stubs)}
        command = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--no-incremental", *files]
        return subprocess.run(command, cwd=REPO, env=env).returncode


if __name__ == "__main__":
    targets = sys.argv[1:] or [name for name in MODULES if (REPO / name).exists()]
    sys.exit(run_mypy(targets))
