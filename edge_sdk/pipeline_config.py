"""The pipeline file (`edge.yaml`): read with yaml.safe_load, validated into typed settings.

Every problem names the file, the key path and the fix: unknown keys, missing files, bad values.
Relative paths are relative to the folder of the YAML file.

A model is a file, or a PyTorch `package.module:factory` (importable from the working folder or PYTHONPATH, as for
`edge-sdk convert`) with optional `weights` and the example `input_shape` its conversions trace it at. `trust_model:
true` is the one trust flag (`--trust-model`) for that model alone: its files may carry code (a DeepSpeed
checkpoint's pickles, Keras Lambda layers); the pipeline has no flag that would trust every model of the file.
`nhwc_input: true` (a PyTorch factory, which takes NCHW) makes its TFLite artifacts take NHWC, as `convert
--nhwc-input` does; its other formats keep NCHW.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import UsageError
from edge_sdk.fileio import check_path_length
from edge_sdk.formats import FORMATS, FP32
from edge_sdk.loaders.torch_weights import TorchModelSpec
from edge_sdk.pipeline_schema import TARGET_KINDS  # declared once, with the schema

TARGET_KEYS = {"kind", "host", "port", "user", "profile", "ssh_key", "known_hosts", "accept_new_host_key", "python", "timeout_s"}
# How to reach a device: meaningless for a target that runs on this machine.
SSH_ONLY_KEYS = TARGET_KEYS - {"kind"}
PREPROCESS_KEYS = {"scale", "mean", "std", "layout", "source_layout", "resize", "color"}
TOP_LEVEL_KEYS = {"version", "output", "data", "preprocess", "models", "formats", "targets", "bench", "accuracy_budget"}
MODEL_KEYS = {"path", "preprocess", "formats", "teacher", "weights", "trust_model", "input_shape", "nhwc_input"}


@dataclass
class ModelEntry:
    name: str
    path: Path | TorchModelSpec  # a model file, or a PyTorch factory with its weights and trust flag
    preprocess: dict[str, Any]
    formats: dict[str, list[str]]
    teacher: str | None = None
    input_shapes: dict[str, list[int]] | None = None  # {"": shape} for the only input, else by input name
    trust_model: bool = False
    nhwc_input: bool = False  # PyTorch factory: its TFLite artifacts take NHWC (convert --nhwc-input)

    @property
    def is_pytorch(self) -> bool:
        return isinstance(self.path, TorchModelSpec)

    def identity(self) -> Any:
        """What the model's conversions and benches depend on (cache keys): the file's sha256, or the factory, its
        weights' sha256 and the trust flag; and the input shapes given."""
        from edge_sdk.fileio import sha256_of

        if isinstance(self.path, TorchModelSpec):
            weights = sha256_of(self.path.weights) if self.path.weights else None
            return [self.path.factory, weights, self.path.trust_model, self.input_shapes]
        return sha256_of(self.path) if not self.input_shapes else [sha256_of(self.path), self.input_shapes]


@dataclass
class TargetEntry:
    """One entry of `targets:`. An ssh target is a device of a named profile (`edge-sdk targets`) at `host`, an
    ssh:// URL; it is benched by edge_sdk.api.bench_on_devices, the code path of `edge-sdk bench --host`."""

    name: str
    kind: str
    host: str | None = None
    port: int = 22
    user: str | None = None
    profile: str | None = None
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    python: str | None = None
    timeout_s: float = 600.0

    @property
    def on_device(self) -> bool:
        return self.kind == "ssh"

    @property
    def url(self) -> str:
        """ssh://user@host:port, as `edge-sdk bench --host` takes it."""
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"ssh://{self.user + '@' if self.user else ''}{host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        """What a bench on this target depends on (part of the pipeline cache key). The ssh key, known_hosts and
        timeout decide whether a device is reached, not what it measures, so they are left out."""
        identity = {"name": self.name, "kind": self.kind, "host": self.host, "port": self.port, "user": self.user}
        if self.on_device:
            identity.update(profile=self.profile, python=self.python)
        return identity

    def device_options(self) -> Any:
        """The edge_sdk.remote.DeviceOptions of `edge-sdk bench --ssh-key --known-hosts --accept-new-host-key
        --timeout --remote-python`."""
        from edge_sdk.remote import DeviceOptions

        return DeviceOptions(identity_file=self.ssh_key, known_hosts=self.known_hosts, accept_new_host_key=self.accept_new_host_key,
                             timeout_s=self.timeout_s, python=self.python)


@dataclass
class PipelineConfig:
    path: Path
    output: Path
    evaluation_data: Path
    calibration_data: Path | None
    label_key: str | None
    max_samples: int | None
    models: list[ModelEntry]
    targets: list[TargetEntry]
    bench: dict[str, int] = field(default_factory=dict)
    max_drop_points: float | None = None


class _Reader:
    """Checks one YAML file; every message starts with the file and the key path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent

    def fail(self, where: str, problem: str, fix: str | None = None) -> UsageError:
        return UsageError(f"{self.path}: {where}: {problem}", fix=fix)

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, not {type(value).__name__}")
        unknown = sorted(set(value) - allowed, key=str)  # YAML keys may be numbers, dates or null
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(map(str, unknown))}", fix=f"allowed keys: {', '.join(sorted(allowed))}")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(where, f"missing key(s) {', '.join(missing)}")
        return value

    def any_path(self, value: Any, where: str) -> Path:
        if not isinstance(value, str) or not value or "\x00" in value:
            raise self.fail(where, f"must be a path, not {value!r}")
        try:
            check_path_length(value, "the path")
        except UsageError as error:
            raise self.fail(where, error.message, fix=error.fix) from None
        return (self.root / value) if not Path(value).is_absolute() else Path(value)

    def existing_path(self, value: Any, where: str) -> Path:
        path = self.any_path(value, where)
        if not path.exists():
            raise self.fail(where, f"{value} does not exist (looked for {path})", fix="fix the path; relative paths start at the YAML file's folder")
        return path

    def number(self, value: Any, where: str, kind: type, minimum: float) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)) or value < minimum:
            raise self.fail(where, f"must be {'an integer' if kind is int else 'a number'} >= {minimum}, not {value!r}")
        return value

    def formats(self, value: Any, where: str) -> dict[str, list[str]]:
        formats = self.mapping(value, where, set(FORMATS))
        for fmt, modes in formats.items():
            if not isinstance(modes, list) or not modes:
                raise self.fail(f"{where}.{fmt}", f"must be a non-empty list of modes, not {modes!r}")
            bad = [mode for mode in modes if mode not in FORMATS[fmt].modes]
            if bad:
                raise self.fail(f"{where}.{fmt}", f"unknown mode(s) {bad}", fix=f"{fmt} modes: {', '.join(FORMATS[fmt].modes)}")
        return {fmt: list(modes) for fmt, modes in formats.items()}

    def input_shapes(self, value: Any, where: str) -> dict[str, list[int]]:
        """`[1, 3, 224, 224]` (the only input) or `{name: [1, 3, 224, 224], ...}`."""
        def dims(shape: Any, at: str) -> list[int]:
            if not isinstance(shape, list) or not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
                raise self.fail(at, f"must be a list of positive sizes, e.g. [1, 3, 224, 224], not {shape!r}")
            return list(shape)

        if isinstance(value, dict):
            if not value:
                raise self.fail(where, "names no input")
            return {str(name): dims(shape, f"{where}.{name}") for name, shape in value.items()}
        return {"": dims(value, where)}

    def preprocess(self, value: Any, where: str) -> dict[str, Any]:
        spec = self.mapping(value, where, PREPROCESS_KEYS)
        if "layout" in spec and spec["layout"] not in ("NHWC", "NCHW"):
            raise self.fail(f"{where}.layout", f"must be NHWC or NCHW, not {spec['layout']!r}")
        if "scale" in spec:
            self.number(spec["scale"], f"{where}.scale", float, 0.0)
        return dict(spec)


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"pipeline file {path} does not exist", fix="give the path of an edge.yaml")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is not valid YAML: {error}", fix="save it as UTF-8 YAML text") from error
    except RecursionError as error:
        raise UsageError(f"{path} nests too deeply to be a pipeline file") from error
    reader = _Reader(path)
    top = reader.mapping(document, "top level", TOP_LEVEL_KEYS, {"models", "data"})
    if top.get("version", 1) != 1:
        raise reader.fail("version", f"this edge-sdk reads version 1, not {top['version']!r}")
    data = reader.mapping(top["data"], "data", {"evaluation", "calibration", "label_key", "max_samples"}, {"evaluation"})
    default_preprocess = reader.preprocess(top.get("preprocess", {}), "preprocess")
    default_formats = reader.formats(top.get("formats", {"tflite": [FP32]}), "formats")
    models_section = reader.mapping(top["models"], "models", set(top["models"]) if isinstance(top["models"], dict) else set())
    if not models_section:
        raise reader.fail("models", "names no model", fix="add e.g. `student: {path: models/student.h5}`")
    models = []
    for name, entry in models_section.items():
        where = f"models.{name}"
        _check_model_name(reader, name)
        entry = reader.mapping(entry, where, MODEL_KEYS, {"path"})
        formats = reader.formats(entry["formats"], f"{where}.formats") if "formats" in entry else default_formats
        teacher = entry.get("teacher")
        if teacher is not None and (not isinstance(teacher, str) or teacher not in models_section or teacher == name):
            others = [str(n) for n in models_section if n != name]
            problem = "a model cannot be its own teacher" if teacher == name else f"{teacher!r} is not another model of this file"
            raise reader.fail(f"{where}.teacher", problem, fix=f"one of {', '.join(others)}, or no teacher" if others else "remove `teacher`: this file names no other model")
        preprocess = {**default_preprocess, **reader.preprocess(entry.get("preprocess", {}), f"{where}.preprocess")}
        models.append(_model(reader, str(name), entry, where, preprocess, formats, teacher))
    _check_teacher_cycles(reader, models)
    if any(FORMATS[fmt].needs_calibration(mode) for model in models for fmt, modes in model.formats.items() for mode in modes) and "calibration" not in data:
        calibrated = dict.fromkeys(mode for spec in FORMATS.values() for mode in spec.calibrated_modes)
        raise reader.fail("data.calibration", f"{' and '.join(calibrated)} modes need calibration data", fix="add data.calibration (e.g. the training split)")
    targets = _targets(reader, top.get("targets", {"desktop": {"kind": "desktop"}}))
    bench = reader.mapping(top.get("bench", {}), "bench", {"runs", "warmup", "threads"})
    bench = {key: reader.number(value, f"bench.{key}", int, 0 if key == "warmup" else 1) for key, value in bench.items()}
    budget = reader.mapping(top.get("accuracy_budget", {}), "accuracy_budget", {"max_drop_points"})
    max_drop = reader.number(budget["max_drop_points"], "accuracy_budget.max_drop_points", float, 0.0) if "max_drop_points" in budget else None
    output = top.get("output", "edge-output")
    if not isinstance(output, str) or not output:
        raise reader.fail("output", f"must be a folder path, not {output!r}")
    from edge_sdk.pipeline_schema import validate_pipeline_document

    validate_pipeline_document(document, path)  # the published schema (editors use it too) agrees with the checks above
    return PipelineConfig(
        path=path, output=reader.root / output, evaluation_data=reader.existing_path(data["evaluation"], "data.evaluation"),
        calibration_data=reader.existing_path(data["calibration"], "data.calibration") if "calibration" in data else None,
        label_key=data.get("label_key"), max_samples=reader.number(data["max_samples"], "data.max_samples", int, 1) if data.get("max_samples") is not None else None,
        models=models, targets=targets, bench=bench, max_drop_points=max_drop,
    )


def _model(reader: _Reader, name: str, entry: dict[str, Any], where: str, preprocess: dict[str, Any], formats: dict[str, list[str]], teacher: str | None) -> ModelEntry:
    """A model file, or a PyTorch factory with `weights` (relative to the YAML file), `trust_model` and `input_shape`."""
    from edge_sdk.loaders.to_onnx import is_factory_spec

    trust, nhwc = entry.get("trust_model", False), entry.get("nhwc_input", False)
    for key, value in (("trust_model", trust), ("nhwc_input", nhwc)):
        if not isinstance(value, bool):
            raise reader.fail(f"{where}.{key}", f"must be true or false, not {value!r}")
    shapes = reader.input_shapes(entry["input_shape"], f"{where}.input_shape") if "input_shape" in entry else None
    value = entry["path"]
    if isinstance(value, str) and is_factory_spec(value) and not (reader.root / value).exists():
        weights = reader.existing_path(entry["weights"], f"{where}.weights") if "weights" in entry else None
        if shapes is None:
            raise reader.fail(f"{where}.input_shape", f"the PyTorch model {value} needs the example input shape its conversions trace it at (as PyTorch takes it, NCHW)",
                              fix="add e.g. `input_shape: [1, 3, 224, 224]`")
        return ModelEntry(name, TorchModelSpec(value, weights, trust), preprocess, formats, teacher, shapes, trust, nhwc)
    if "weights" in entry:
        raise reader.fail(f"{where}.weights", f"weights apply to a PyTorch package.module:factory path, not the model file {value!r}",
                          fix="give the factory that builds the architecture as `path`, e.g. mypkg.nets:make_cnn, or remove `weights`")
    if nhwc:
        # Benched against the model file itself, which takes NCHW: only the PyTorch reference is fed per artifact layout.
        raise reader.fail(f"{where}.nhwc_input", f"applies to a PyTorch package.module:factory (benched against the PyTorch model, fed NCHW), not the file {value!r}",
                          fix="remove nhwc_input, or convert this model with `edge-sdk convert --nhwc-input` and bench it against a PyTorch --reference")
    return ModelEntry(name, reader.existing_path(value, f"{where}.path"), preprocess, formats, teacher, shapes, trust)


# Model names become file names (artifacts/NAME_MODE.FORMAT): one plain path component, never `..` or a slash.
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _check_model_name(reader: _Reader, name: Any) -> None:
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name) or ".." in name:
        raise reader.fail(f"models.{name}", f"the model name {name!r} is not a plain file name (artifacts are named after it)",
                          fix="use letters, digits, '_', '-' and '.', starting with a letter, digit or '_' (no '..', no '/')")


def _check_teacher_cycles(reader: _Reader, models: list[ModelEntry]) -> None:
    """Teachers form chains, never loops (a -> b -> a): the teacher of a comparison must be a fixed reference."""
    teachers = {model.name: model.teacher for model in models}
    for model in models:
        chain = [model.name]
        while (teacher := teachers.get(chain[-1])) is not None:
            if teacher in chain:
                loop = " -> ".join(chain[chain.index(teacher):] + [teacher])
                raise reader.fail(f"models.{model.name}.teacher", f"teachers form a loop: {loop}", fix="remove `teacher` from one model of the loop")
            chain.append(teacher)


def _targets(reader: _Reader, value: Any) -> list[TargetEntry]:
    section = reader.mapping(value, "targets", set(value) if isinstance(value, dict) else set())
    if not section:
        raise reader.fail("targets", "names no target", fix="add `desktop: {kind: desktop}`")
    targets = []
    for name, entry in section.items():
        where = f"targets.{name}"
        entry = reader.mapping(entry, where, TARGET_KEYS, {"kind"})
        kind = entry["kind"]
        if kind not in TARGET_KINDS:
            raise reader.fail(f"{where}.kind", f"unknown target kind {kind!r}", fix=f"one of {', '.join(TARGET_KINDS)}")
        if kind == "ssh":
            targets.append(_ssh_target(reader, str(name), entry, where))
            continue
        extra = sorted(set(entry) & SSH_ONLY_KEYS)
        if extra:
            raise reader.fail(f"{where}.{extra[0]}", f"a {kind} target runs on this machine and takes no {', '.join(extra)}",
                              fix="use `kind: ssh` with a host and a profile to bench on a device")
        targets.append(TargetEntry(str(name), kind))
    return targets


def _ssh_target(reader: _Reader, name: str, entry: dict[str, Any], where: str) -> TargetEntry:
    """An ssh target: `host: ssh://user@host:port` (or `host` with `port` and `user`) and a device `profile`."""
    from targets.profiles import all_profiles
    from targets.transport.ssh import parse_ssh_url

    host = entry.get("host")
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host) or host.count("@") > 1:
        raise reader.fail(f"{where}.host", f"an ssh target needs a host like ssh://pi@raspberrypi.local or pi@raspberrypi.local, not {host!r}")
    try:
        address = parse_ssh_url(host)
    except UsageError as error:
        raise reader.fail(f"{where}.host", error.message, fix="write ssh://user@host, ssh://user@host:port, or a host name with `port` and `user`") from None
    for key, given in (("port", address.port), ("user", address.user)):
        if given is not None and key in entry:
            raise reader.fail(f"{where}.{key}", f"the host {host!r} already names the {key}", fix=f"give the {key} once: in the host URL or as `{key}`")
    port = address.port or reader.number(entry.get("port", 22), f"{where}.port", int, 1)
    if port > 65535:
        raise reader.fail(f"{where}.port", f"{port} is not a TCP port")
    user = address.user if address.user is not None else entry.get("user")
    if user is not None and (not isinstance(user, str) or not user or any(c.isspace() or c in "@:/" for c in user)):
        raise reader.fail(f"{where}.user", f"must be a user name, not {user!r}")
    profiles = all_profiles()
    profile = entry.get("profile")
    if profile is None:
        raise reader.fail(f"{where}.profile", "an ssh target needs the device's profile, e.g. `profile: raspberry-pi-4`",
                          fix=f"one of {', '.join(n for n, p in profiles.items() if p.transport == 'ssh')} (see `edge-sdk targets`)")
    if not isinstance(profile, str) or profile not in profiles:
        raise reader.fail(f"{where}.profile", f"unknown target profile {profile!r}", fix=f"one of {', '.join(profiles)} (see `edge-sdk targets`)")
    if profiles[profile].transport != "ssh":
        raise reader.fail(f"{where}.profile", f"profile {profile} is reached over {profiles[profile].transport}, not ssh",
                          fix=f"one of {', '.join(n for n, p in profiles.items() if p.transport == 'ssh')}")
    accept_new = entry.get("accept_new_host_key", False)
    if not isinstance(accept_new, bool):
        raise reader.fail(f"{where}.accept_new_host_key", f"must be true or false, not {accept_new!r}")
    ssh_key = reader.existing_path(entry["ssh_key"], f"{where}.ssh_key") if "ssh_key" in entry else None
    known_hosts = None
    if "known_hosts" in entry:
        # A first-seen key is written to known_hosts, so with accept_new_host_key the file may not exist yet.
        known_hosts = reader.any_path(entry["known_hosts"], f"{where}.known_hosts") if accept_new else reader.existing_path(entry["known_hosts"], f"{where}.known_hosts")
    python = entry.get("python")
    if python is not None and (not isinstance(python, str) or not python.strip() or any(c.isspace() for c in python)):
        raise reader.fail(f"{where}.python", f"must be the device's Python interpreter (a command or path, e.g. python3), not {python!r}")
    timeout_s = float(reader.number(entry["timeout_s"], f"{where}.timeout_s", float, 1)) if "timeout_s" in entry else 600.0
    return TargetEntry(name, "ssh", address.host, port, user, profile, ssh_key, known_hosts, accept_new, python, timeout_s)
