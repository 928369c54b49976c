"""Checkpoint intake (edge_sdk.loaders.torch_weights): safetensors, Accelerate folders, plain state dicts, refusals."""

from __future__ import annotations

import json
import pickle

import pytest

from edge_sdk.errors import ModelFileError, UsageError

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

from edge_sdk.loaders.torch_weights import TorchModelSpec, apply_weights, checkpoint_kind, factory_model  # noqa: E402
from tests.converters.torch_nets import digits_cnn, digits_cnn_wider  # noqa: E402


def _trained_state() -> dict:
    model = digits_cnn()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)  # different from a fresh factory's weights
    return model.state_dict()


def _same(model, state) -> bool:
    return all(torch.equal(model.state_dict()[key], value) for key, value in state.items())


def test_safetensors_file_loads_into_the_factory_model(tmp_path):
    state = _trained_state()
    safetensors_torch.save_file(state, tmp_path / "w.safetensors")
    model, described = factory_model(TorchModelSpec("tests.converters.torch_nets:digits_cnn", tmp_path / "w.safetensors"))
    assert _same(model, state)
    assert described["kind"] == "safetensors" and described["tensors"] == len(state) and len(described["sha256"]) == 64


def test_accelerate_save_model_folder_single_and_sharded(tmp_path):
    accelerate = pytest.importorskip("accelerate")
    state = _trained_state()
    model = digits_cnn()
    model.load_state_dict(state)
    accelerator = accelerate.Accelerator(cpu=True)
    accelerator.save_model(model, tmp_path / "single")
    accelerator.save_model(model, tmp_path / "sharded", max_shard_size="10KB")
    assert len(list((tmp_path / "sharded").glob("*.safetensors"))) > 1 and list((tmp_path / "sharded").glob("*.index.json"))
    for folder, shards in (("single", 1), ("sharded", len(list((tmp_path / "sharded").glob("*.safetensors"))))):
        fresh = digits_cnn()
        described = apply_weights(fresh, tmp_path / folder)
        assert checkpoint_kind(tmp_path / folder) == "accelerate" and described["shards"] == shards
        assert _same(fresh, state)


def test_plain_state_dict_loads_with_weights_only(tmp_path):
    state = _trained_state()
    torch.save(state, tmp_path / "w.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "nested.bin")
    for name in ("w.pt", "nested.bin"):
        fresh = digits_cnn()
        apply_weights(fresh, tmp_path / name)
        assert _same(fresh, state)


class _Payload:
    """An object whose unpickling would run code: weights_only=True refuses it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_a_pickled_object_is_refused_even_with_trust_model(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"weight": _Payload()}, handle)
    for trust in (False, True):
        with pytest.raises(ModelFileError, match=r"weights_only=True\) refuses it") as error:
            apply_weights(digits_cnn(), tmp_path / "evil.pt", trust_model=trust)
        assert error.value.exit_code == 3
    assert "code ran" not in capsys.readouterr().out


def test_missing_unexpected_and_mismatched_keys_are_one_error_listing_them(tmp_path):
    state = _trained_state()
    partial = {key: value for key, value in state.items() if not key.startswith("6.")}
    partial["extra.weight"] = torch.zeros(3)
    safetensors_torch.save_file(partial, tmp_path / "partial.safetensors")
    with pytest.raises(ModelFileError) as error:
        apply_weights(digits_cnn(), tmp_path / "partial.safetensors")
    text = str(error.value)
    assert "2 missing keys: 6.weight, 6.bias" in text and "1 unexpected keys: extra.weight" in text
    safetensors_torch.save_file(digits_cnn_wider().state_dict(), tmp_path / "wider.safetensors")
    with pytest.raises(ModelFileError, match=r"shape mismatches: 0.weight: checkpoint \[8, 1, 3, 3\] vs model \[16, 1, 3, 3\]"):
        apply_weights(digits_cnn(), tmp_path / "wider.safetensors")


def test_module_prefix_of_wrapped_models_is_stripped(tmp_path):
    state = _trained_state()
    safetensors_torch.save_file({f"module.{key}": value for key, value in state.items()}, tmp_path / "ddp.safetensors")
    fresh = digits_cnn()
    apply_weights(fresh, tmp_path / "ddp.safetensors")
    assert _same(fresh, state)


def test_deepspeed_folder_refusals_need_no_deepspeed(tmp_path):
    folder = tmp_path / "ds"
    (folder / "global_step5").mkdir(parents=True)
    (folder / "global_step5" / "mp_rank_00_model_states.pt").write_bytes(b"not read")
    with pytest.raises(ModelFileError, match="no 'latest' file"):
        apply_weights(digits_cnn(), folder, trust_model=True)
    (folder / "latest").write_text("global_step5")
    with pytest.raises(UsageError, match="pickles") as error:
        apply_weights(digits_cnn(), folder)
    assert "--trust-model" in str(error.value) and error.value.exit_code == 2


def test_unknown_weights_are_refused(tmp_path):
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        checkpoint_kind(tmp_path / "w.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="neither an Accelerate"):
        checkpoint_kind(tmp_path / "empty")
    with pytest.raises(ModelFileError, match="do not exist"):
        checkpoint_kind(tmp_path / "nope.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        apply_weights(digits_cnn(), tmp_path / "bad.safetensors")
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"0.weight": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(ModelFileError, match="lists shard"):
        apply_weights(digits_cnn(), sharded)


def test_inspect_describes_a_factory_module_with_its_weights(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    safetensors_torch.save_file(_trained_state(), tmp_path / "w.safetensors")
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    shown = subprocess.run([sys.executable, "-m", "edge_sdk", "inspect", "tests.converters.torch_nets:digits_cnn", "--input-shape", "1,1,8,8",
                            "--weights", tmp_path / "w.safetensors", "--json"], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert shown.returncode == 0, shown.stderr
    described = json.loads(shown.stdout)
    assert described["parameters"] == sum(v.numel() for v in digits_cnn().parameters())
    assert described["inputs"][0]["shape"] == [1, 1, 8, 8] and described["outputs"][0]["shape"] == [1, 10]
    assert described["weights"]["kind"] == "safetensors"
    wrong = subprocess.run([sys.executable, "-m", "edge_sdk", "inspect", "tests.converters.torch_nets:digits_cnn", "--input-shape", "1,3,8,8"],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert wrong.returncode == 2 and "does not run at input shapes" in wrong.stderr and "Traceback" not in wrong.stderr
