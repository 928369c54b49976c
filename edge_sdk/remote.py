"""Host side of a bench on a device (`edge-sdk bench ... --target raspberry-pi-4 --host ssh://pi@pi4`).

For each artifact the host preprocesses the evaluation samples (the manifest's spec, exactly as a local bench)
into an .npz and computes the float reference once. For each device, in parallel threads, a transport opens a
private work folder there, receives the runner's source (a zip of the edge_sdk and targets packages, put first
on PYTHONPATH, so the device runs the host's runner version without installing edge-sdk), the measurement
settings as JSON (edge_sdk.measurement, read with `--settings`), the artifact (with its manifest and ONNX
external data) and the inputs; checks the runtime; runs `python3 -m edge_sdk.runner`;
pulls the result JSON and the outputs back, and removes the folder. The host then computes accuracy and
fidelity from the pulled outputs with the same functions as a local bench. A failure on one device or
artifact becomes a result with status 'error'; every other result is kept.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import DeviceError, EdgeSdkError, MissingDependencyError, RuntimeFailure, UsageError
from edge_sdk.measurement import write_settings_file

RUNNER_ZIP = "edge_sdk_runner.zip"
SETTINGS_FILE = "settings.json"
EXIT_MISSING_DEPENDENCY = MissingDependencyError.exit_code


@dataclass
class DeviceOptions:
    """How to reach devices: ssh key and known_hosts, first-key acceptance, timeouts, remote interpreter."""

    identity_file: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    timeout_s: float = 600.0
    connect_timeout_s: int = 10
    python: str | None = None  # interpreter on the device (default: the profile's, usually python3)
    benchmark_model: str | None = None  # adb: path of benchmark_model (local file to push, or a path on the device)
    workdir_parent: str = "/tmp"

    def __post_init__(self) -> None:
        """A key or known_hosts file that is missing is a usage error here, not a failed login on the device."""
        files = [("--ssh-key", self.identity_file, True), ("--known-hosts", self.known_hosts, not self.accept_new_host_key)]
        for flag, path, required in files:
            if path is None or (not required and not Path(path).exists()):
                continue  # with --accept-new-host-key, the first key seen creates known_hosts
            if not Path(path).is_file() or not os.access(path, os.R_OK):
                problem = "does not exist" if not Path(path).exists() else ("is not a regular file" if not Path(path).is_file() else "is not readable")
                raise UsageError(f"{flag} {path} {problem}", fix=f"give the path of an existing {'private key' if flag == '--ssh-key' else 'known_hosts'} file")


@dataclass
class _Prepared:
    path: Path
    inputs_npz: Path
    labels: np.ndarray | None
    data: dict[str, Any]
    reference: Any = None
    extra_files: list[Path] = field(default_factory=list)


def open_transport(host: str, options: DeviceOptions) -> Any:
    """A transport for `host`: ssh://..., adb://..., or 'local'."""
    if host in ("local", "localhost-process"):
        from targets.transport.local import LocalTransport

        return LocalTransport()
    if host.startswith("adb"):
        from targets.transport.adb import AdbTransport

        return AdbTransport(host, timeout_s=options.timeout_s)
    from targets.transport.ssh import SshOptions, SshTransport

    return SshTransport(host, SshOptions(options.identity_file, options.known_hosts, options.accept_new_host_key, options.connect_timeout_s,
                                         workdir_parent=options.workdir_parent))


def bench_on_devices(artifacts: list[Path], data: Path, *, hosts: list[str], profile: Any, settings: Any, options: DeviceOptions | None = None,
                     reference: Any = None, preprocess: dict[str, Any] | None = None, input_key: str | None = None,
                     label_key: str | None = None, progress: Any = None) -> list[Any]:
    """One result per (device, artifact), devices in parallel; see the module docstring."""
    from edge_sdk.bench import ReferenceCache
    from edge_sdk.progress import Progress

    options = options or DeviceOptions()
    progress = progress or Progress(enabled=False)
    if not hosts:
        raise UsageError(f"target {profile.name} needs --host (its transport is {profile.transport})")
    with tempfile.TemporaryDirectory(prefix="edge-sdk-remote-") as scratch:
        scratch_dir = Path(scratch)
        references = ReferenceCache(reference if hasattr(reference, "factory") else Path(reference), settings, progress) if reference else None
        if references:
            references.check([Path(path) for path in artifacts])  # as a local bench: a bad reference fails before any work
        prepared: list[_Prepared | EdgeSdkError] = []
        for index, path in enumerate(artifacts):
            try:
                prepared.append(_prepare(Path(path), Path(data), scratch_dir / f"inputs-{index}.npz", references, settings, preprocess or {}, input_key, label_key, progress))
            except EdgeSdkError as error:
                prepared.append(error)
        runner_zip = build_runner_zip(scratch_dir / RUNNER_ZIP)
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            per_host = list(pool.map(lambda host: _bench_on_host(host, artifacts, prepared, runner_zip, scratch_dir, profile, settings, options, references, data), hosts))
    return [result for results in per_host for result in results]


def build_runner_zip(path: Path) -> Path:
    """A zip of the edge_sdk and targets packages' .py files: what the device needs to run the runner."""
    import importlib.util

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in ("edge_sdk", "targets"):
            spec = importlib.util.find_spec(package)
            root = Path(spec.origin).parent  # type: ignore[union-attr,arg-type]
            for source in sorted(root.rglob("*.py")):
                archive.write(source, f"{root.name}/{source.relative_to(root)}")
    return path


def _prepare(path: Path, data: Path, inputs_npz: Path, references: Any, settings: Any, overrides: dict[str, Any],
             input_key: str | None, label_key: str | None, progress: Any) -> _Prepared:
    from edge_sdk.artifact import load_artifact, manifest_path_for
    from edge_sdk.data import Dataset, PreprocessSpec
    from edge_sdk.fileio import save_npz_atomic

    artifact = load_artifact(path, verify=settings.verify)
    spec = PreprocessSpec.from_dict(artifact.preprocess).merged(overrides)
    dataset = Dataset(data, spec, input_key=input_key, label_key=label_key)
    indices = dataset.subset(settings.max_samples, settings.seed)
    arrays: dict[str, list[np.ndarray]] = {name: [] for name in dataset.input_names}
    labels: list[int] = []
    for sample in dataset.samples(indices):
        for name, array in sample.inputs.items():
            arrays[name].append(array)
        if sample.label is not None:
            labels.append(sample.label)
    save_npz_atomic(inputs_npz, {name: np.stack(values) for name, values in arrays.items()})
    count = len(next(iter(arrays.values())))
    extra = [manifest_path_for(path)] if manifest_path_for(path).exists() else []
    extra += _external_data_files(path)
    prepared = _Prepared(path, inputs_npz, np.asarray(labels) if labels and len(labels) == count else None,
                         {**dataset.describe(), "evaluated_samples": count}, extra_files=extra)
    if references is not None:
        prepared.reference = references.outputs_for(dataset, indices, manifest=artifact.manifest, artifact=path.name)
    return prepared


def _external_data_files(path: Path) -> list[Path]:
    """ONNX external-data files next to the model (the model names them relative to its folder)."""
    if path.suffix != ".onnx":
        return []
    return [candidate for candidate in sorted(path.parent.glob(path.name + ".data")) + sorted(path.parent.glob(path.stem + ".onnx_data")) if candidate.is_file()]


def _bench_on_host(host: str, artifacts: list[Path], prepared: list[Any], runner_zip: Path, scratch: Path, profile: Any, settings: Any,
                   options: DeviceOptions, references: Any, data: Path) -> list[Any]:
    results: list[Any] = []
    try:
        transport = open_transport(host, options)
        with transport:
            zip_on_device = transport.push(runner_zip, RUNNER_ZIP) if profile.transport != "adb" else None
            if zip_on_device:
                # The device reads its measurement settings as schema-checked JSON (edge_sdk.measurement), not flags.
                settings_json = write_settings_file(device_settings(settings, profile), scratch / f"settings-{id(transport)}.json")
                transport.push(settings_json, SETTINGS_FILE)
            checked: dict[str, dict[str, Any]] = {}
            for index, item in enumerate(prepared):
                if isinstance(item, EdgeSdkError):
                    results.append(_error_result(artifacts[index], host, profile, settings, data, item))
                    continue
                try:
                    if profile.transport == "adb":
                        results.append(_run_benchmark_model(transport, item, profile, settings, options))
                        continue
                    results.append(_run_one(transport, zip_on_device, item, index, scratch, profile, settings, options, references, checked))
                except DeviceError:
                    raise
                except EdgeSdkError as error:
                    results.append(_error_result(item.path, host, profile, settings, data, error))
    except DeviceError as error:
        # The device is unreachable or gone: every artifact not measured yet gets this error.
        for path in artifacts[len(results):]:
            results.append(_error_result(Path(path), host, profile, settings, data, error))
    return results


def _run_one(transport: Any, zip_on_device: str | None, item: _Prepared, index: int, scratch: Path, profile: Any, settings: Any,
             options: DeviceOptions, references: Any, checked: dict[str, dict[str, Any]]) -> Any:
    from edge_sdk.bench import Evaluation, accuracy_record, compare_to_reference
    from edge_sdk.models import detect_model_kind
    from edge_sdk.results import BenchResult

    kind = detect_model_kind(item.path)
    runtime = profile.runtime_for(kind)
    python = options.python or profile.python or transport.default_python
    if getattr(transport, "name", "") == "local" and options.python is None:
        python = transport.default_python
    pythonpath = {"PYTHONPATH": zip_on_device} if zip_on_device else {}
    if runtime not in checked:
        checked[runtime] = _check_runtime(transport, python, runtime, pythonpath, profile, options)
    model_name = f"model-{index}{item.path.suffix}"
    transport.push(item.path, model_name)
    for extra in item.extra_files:
        transport.push(extra, model_name + ".manifest.json" if extra.name.endswith(".manifest.json") else extra.name)
    transport.push(item.inputs_npz, f"inputs-{index}.npz")
    argv = [python, "-m", "edge_sdk.runner", model_name, "--inputs", f"inputs-{index}.npz", "--output", f"result-{index}.json",
            "--outputs", f"outputs-{index}.npz", "--runtime", runtime, "--settings", SETTINGS_FILE]
    output = transport.run(argv, options.timeout_s, pythonpath)
    if output.returncode != 0:
        raise RuntimeFailure(_crash_message(output, transport.host, item.path), fix="run `edge-sdk run` on the device by hand to see the full log")
    result_json, outputs_npz = scratch / f"result-{index}-{id(transport)}.json", scratch / f"outputs-{index}-{id(transport)}.npz"
    transport.pull(f"result-{index}.json", result_json)
    transport.pull(f"outputs-{index}.npz", outputs_npz)
    device_result = json.loads(result_json.read_text())["results"][0]
    output_names = [spec["name"] for spec in (device_result.get("artifact") or {}).get("io", {}).get("outputs", [])]
    outputs, all_outputs = pulled_outputs(outputs_npz, output_names)
    # Every output by name, as a local bench has them: fidelity compares each by its kind, not only the primary one.
    evaluation = Evaluation(outputs, item.labels, device_result["timing"]["first_inference_ms"], all_outputs=all_outputs)
    device_result.pop("schema_version", None)
    device_result.pop("created_at", None)
    result = BenchResult(**device_result)
    result.artifact = {**result.artifact, "path": str(item.path), "name": item.path.name}
    result.target = {"name": profile.name, "transport": transport.name, "host": transport.host, "runtime_check": checked[runtime]}
    result.data = item.data
    result.settings = {**settings.to_dict(), "runtime": result.settings.get("runtime")}
    result.accuracy = accuracy_record(evaluation, settings.seed)
    if references is not None and item.reference is not None:
        result.reference = compare_to_reference(references, item.reference, evaluation, settings)
    result.outputs = outputs  # type: ignore[attr-defined]  # for callers comparing outputs; not serialised
    return result


def pulled_outputs(path: Path, output_names: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(the primary output, every output by name in the model's order) from a runner's --outputs .npz.

    The runner stores each output under its name and the primary one under `outputs` as well (an output that is
    itself named `outputs` is stored only there)."""
    from edge_sdk.runner import OUTPUTS_KEY

    with np.load(path, allow_pickle=False) as pulled:
        primary = pulled[OUTPUTS_KEY]
        names = output_names or [name for name in pulled.files if name != OUTPUTS_KEY]
        missing = [name for name in names if name not in pulled.files]
        if missing:
            raise RuntimeFailure(f"the runner's outputs {path.name} lack {missing} (it has {pulled.files})", fix="use the same edge-sdk version on the device")
        all_outputs = {name: np.asarray(pulled[name]) for name in names}
    return primary, all_outputs or {OUTPUTS_KEY: primary}


def _run_benchmark_model(transport: Any, item: _Prepared, profile: Any, settings: Any, options: DeviceOptions) -> Any:
    """Android: TFLite's benchmark_model measures latency and memory on random inputs (no accuracy)."""
    from edge_sdk.results import BenchResult
    from targets.android_benchmark import bench_with_benchmark_model

    if not options.benchmark_model:
        raise UsageError(f"target {profile.name} runs TFLite's benchmark_model: give its path with --benchmark-model",
                         fix="build it with bazel (//tensorflow/lite/tools/benchmark:benchmark_model, --config=android_arm64)")
    measured = bench_with_benchmark_model(transport, item.path, options.benchmark_model, profile, threads=settings.runner.threads,
                                          xnnpack=settings.runner.xnnpack and profile.xnnpack, runs=settings.runs, warmup=max(1, settings.warmup),
                                          timeout_s=options.timeout_s)
    return BenchResult(
        artifact={"path": str(item.path), "name": item.path.name}, target={"name": profile.name, "transport": "adb", "host": transport.host},
        data={**item.data, "note": "benchmark_model feeds random inputs: latency and memory only"}, settings=settings.to_dict(),
        environment={"architecture": profile.architecture}, timing=measured["timing"], memory=measured["memory"],
    )


def device_settings(settings: Any, profile: Any) -> Any:
    """The settings a device measures with: the user's, with the profile's threads, providers and XNNPACK
    availability filling in what the user left to the target."""
    from dataclasses import replace

    runner = settings.runner
    return replace(settings, target=profile.name, runner=replace(
        runner, threads=runner.threads or profile.threads, xnnpack=runner.xnnpack and profile.xnnpack,
        providers=list(runner.providers or profile.providers)))


def _check_runtime(transport: Any, python: str, runtime: str, pythonpath: dict[str, str], profile: Any, options: DeviceOptions) -> dict[str, Any]:
    output = transport.run([python, "-m", "edge_sdk.runner", "--check-runtime", runtime], options.timeout_s, pythonpath)
    if output.returncode == EXIT_MISSING_DEPENDENCY:
        detail = output.stdout.strip().splitlines()[-1] if output.stdout.strip() else output.stderr.strip()
        try:
            detail = json.loads(detail)["error"]
        except (ValueError, KeyError, TypeError):
            pass
        raise DeviceError(f"runtime {runtime} missing on {transport.host} ({python}): {detail}", fix=f"on the device: {profile.install}")
    if output.returncode != 0:
        missing_python = output.returncode == 127 or "not found" in output.stderr
        fix = "install Python 3 on the device, or name its interpreter in the profile's `python`" if missing_python else f"on the device: {profile.install}"
        raise DeviceError(f"the runner cannot start on {transport.host} ({python} exited {output.returncode}): {output.stderr.strip()[-400:]}", fix=fix)
    try:
        return dict(json.loads(output.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError) as error:
        raise DeviceError(f"unexpected answer from the runner on {transport.host}: {output.stdout[-300:]!r}") from error


def _crash_message(output: Any, host: str, path: Path) -> str:
    import signal

    code = output.returncode
    # A shell reports death by signal N as 128+N; Python's subprocess (local transport) as -N.
    number = code - 128 if code > 128 else -code if code < 0 else None
    how = f"exit status {code}"
    if number:
        try:
            how = f"killed by {signal.Signals(number).name} (exit status {code})"
        except ValueError:
            pass
    log = (output.stderr.strip() or output.stdout.strip())[-800:] or "(no output)"
    return f"the runner crashed on {host} running {path.name}: {how}\n{log}"


def _error_result(path: Path, host: str, profile: Any, settings: Any, data: Path, error: EdgeSdkError) -> Any:
    from edge_sdk.results import BenchResult

    return BenchResult(
        artifact={"path": str(path), "name": Path(path).name}, target={"name": profile.name, "transport": profile.transport, "host": host},
        data={"path": str(data)}, settings=settings.to_dict(), environment={}, status="error", error=str(error),
    )
