"""edge-sdk: convert, run and measure ML models on edge targets.

`import edge_sdk` imports no framework: TensorFlow, torch and the runtimes load lazily,
inside the converter or runner that needs them. The API functions below are resolved on
first use, so that the slim on-device runner can import `edge_sdk.errors` alone.
"""

from __future__ import annotations

from typing import Any

from edge_sdk.version import __version__

# `edge_sdk.bench` is the measurement module; its API function is exported as `benchmark`.
_API = {"convert": "convert", "benchmark": "bench", "inspect_artifact": "inspect_artifact",
        # typed conversion options (converters.options), for edge_sdk.convert(source, output, options, data=...)
        **{name: name for name in ("TFLiteOptions", "OnnxOptions", "ONNXOptions", "TensorRTOptions", "DataSettings")}}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from edge_sdk import api

        return getattr(api, _API[name])
    raise AttributeError(f"module 'edge_sdk' has no attribute {name!r}")
