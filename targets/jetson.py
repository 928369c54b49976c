"""NVIDIA Jetson boards on JetPack (Ubuntu, aarch64), reached over SSH.

ONNX Runtime's TensorRT and CUDA providers need NVIDIA's JetPack build of onnxruntime-gpu; the pip wheel of
the `pi` extra is CPU only, and the runner then warns and runs on the CPU provider. TensorRT engines are
built on the device (converters/tensorrt.py) with the TensorRT that JetPack ships.
"""

from targets.profiles import TargetProfile

_JETSON_INSTALL = "pip install 'edge-sdk[pi]'  (for GPU: onnxruntime-gpu from NVIDIA's JetPack wheel index)"

PROFILES = [
    TargetProfile(
        name="jetson-orin-nano",
        description="Jetson Orin Nano: 6x Cortex-A78AE, Ampere GPU with 1024 CUDA cores, JetPack 6",
        architecture="aarch64",
        formats=("tensorrt", "onnx", "tflite"),
        runtimes=("tensorrt", "onnxruntime", "litert"),
        transport="ssh",
        threads=6,
        delegates=("xnnpack",),
        providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
        install=_JETSON_INSTALL,
    ),
    TargetProfile(
        name="jetson",
        description="any Jetson (Nano, Xavier, Orin) on JetPack, aarch64",
        architecture="aarch64",
        formats=("tensorrt", "onnx", "tflite"),
        runtimes=("tensorrt", "onnxruntime", "litert"),
        transport="ssh",
        delegates=("xnnpack",),
        providers=("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
        install=_JETSON_INSTALL,
    ),
]
