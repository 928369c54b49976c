"""Android phones (arm64-v8a) reached with adb, measured by TFLite's `benchmark_model` binary."""

from targets.profiles import TargetProfile

PROFILES = [
    TargetProfile(
        name="android-arm64",
        description="Android phone or board, arm64-v8a, TFLite benchmark_model over adb (no Python on the device)",
        architecture="aarch64",
        formats=("tflite",),
        runtimes=("litert",),
        transport="adb",
        threads=4,
        delegates=("xnnpack", "gpu", "nnapi"),
        install="build or download TFLite's benchmark_model for android_arm64 and pass --benchmark-model PATH",
    ),
]
