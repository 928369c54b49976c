from __future__ import annotations

import pytest

from edge_sdk.errors import UsageError
from targets.profiles import all_profiles, get_profile

REQUIRED = ("desktop", "raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "jetson", "android-arm64")


def test_builtin_profiles_cover_the_targets():
    profiles = all_profiles()
    assert set(REQUIRED) <= set(profiles)
    assert profiles["raspberry-pi-4"].architecture == "aarch64" and profiles["raspberry-pi-4"].transport == "ssh"
    assert profiles["android-arm64"].transport == "adb"
    assert profiles["jetson-orin-nano"].runtime_for("onnx") == "onnxruntime"
    assert profiles["raspberry-pi-5"].runtime_for("tflite") == "litert"


def test_unknown_target_names_the_known_ones_and_a_close_match():
    with pytest.raises(UsageError, match="unknown target 'raspberry-pi-3'") as error:
        get_profile("raspberry-pi-3")
    assert "raspberry-pi-4" in str(error.value)


def test_android_has_no_onnx_runtime():
    with pytest.raises(UsageError, match="nothing for a onnx model"):
        get_profile("android-arm64").runtime_for("onnx")


def test_user_yaml_profiles_add_and_replace(tmp_path, monkeypatch):
    (tmp_path / "zero.yaml").write_text(
        "- name: pi-zero-2\n  description: Raspberry Pi Zero 2 W\n  architecture: aarch64\n  formats: [tflite]\n  runtimes: [litert]\n"
        "  transport: ssh\n  threads: 4\n  python: /home/pi/venv/bin/python\n"
    )
    monkeypatch.setenv("EDGE_SDK_TARGETS", str(tmp_path))
    profile = get_profile("pi-zero-2")
    assert profile.threads == 4 and profile.runtimes == ("litert",) and profile.source.endswith("zero.yaml")
    assert profile.python == "/home/pi/venv/bin/python"


def test_user_profiles_are_read_from_xdg_config_home(tmp_path, monkeypatch):
    folder = tmp_path / "xdg" / "edge-sdk" / "targets"
    folder.mkdir(parents=True)
    (folder / "board.yaml").write_text("- name: my-board\n  description: d\n  architecture: aarch64\n  formats: [tflite]\n  runtimes: [litert]\n  transport: ssh\n")
    monkeypatch.delenv("EDGE_SDK_TARGETS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert get_profile("my-board").source.endswith("board.yaml")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")  # the spec: a relative value is ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(UsageError):
        get_profile("my-board")


def test_bad_user_profile_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("name: x\ndescription: d\narchitecture: aarch64\nformats: [tflite]\nruntimes: [litert]\ntransport: ssh\nthreds: 4\n")
    monkeypatch.setenv("EDGE_SDK_TARGETS", str(tmp_path / "bad.yaml"))
    with pytest.raises(UsageError, match="unknown fields threds"):
        all_profiles()


def test_targets_command_lists_profiles(capsys):
    from edge_sdk.cli import main

    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
