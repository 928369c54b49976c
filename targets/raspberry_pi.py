"""Raspberry Pi 4 and 5 on 64-bit Raspberry Pi OS (Debian bookworm, Python 3.11), reached over SSH."""

from targets.profiles import TargetProfile

PROFILES = [
    TargetProfile(
        name="raspberry-pi-4",
        description="Raspberry Pi 4 Model B: 4x Cortex-A72 @ 1.5-1.8 GHz, 64-bit OS",
        architecture="aarch64",
        formats=("tflite", "onnx"),
        runtimes=("litert", "onnxruntime"),
        transport="ssh",
        threads=4,
        delegates=("xnnpack",),
        providers=("CPUExecutionProvider",),
    ),
    TargetProfile(
        name="raspberry-pi-5",
        description="Raspberry Pi 5: 4x Cortex-A76 @ 2.4 GHz, 64-bit OS",
        architecture="aarch64",
        formats=("tflite", "onnx"),
        runtimes=("litert", "onnxruntime"),
        transport="ssh",
        threads=4,
        delegates=("xnnpack",),
        providers=("CPUExecutionProvider",),
    ),
]
