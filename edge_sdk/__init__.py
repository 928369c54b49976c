"""edge-sdk: convert, run and measure ML models on edge targets.

`import edge_sdk` imports no framework: TensorFlow, torch and the runtimes load lazily,
inside the converter or runner that needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

# `edge_sdk.bench` is the measurement module; its API function is exported as `benchmark`.
from edge_sdk.api import bench as benchmark  # noqa: E402
from edge_sdk.api import convert, inspect_artifact  # noqa: E402

__all__ = ["__version__", "benchmark", "convert", "inspect_artifact"]
