"""The machine edge-sdk runs on (x86_64 or aarch64 desktop, laptop or CI runner)."""

from targets.profiles import TargetProfile

PROFILES = [
    TargetProfile(
        name="desktop",
        description="this machine (x86_64 or aarch64), runtimes installed in the current environment",
        architecture="x86_64",
        formats=("tflite", "onnx", "keras"),
        runtimes=("litert", "onnxruntime", "reference"),
        transport="local",
        delegates=("xnnpack",),
        providers=("CPUExecutionProvider",),
        install="pip install 'edge-sdk[litert,onnx]'",
    ),
]
