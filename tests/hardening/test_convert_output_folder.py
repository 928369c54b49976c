"""convert on a full disk or into a read-only folder (issue 15): exit 12 with one message, nothing left behind, the
working directory unchanged — for ONNX, whose third-party steps write their own files, as for TFLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DIGITS_PREPROCESS
from tests.hardening.conftest import assert_refused, files_under, mounted_tmpfs, run_cli_in
from tests.hardening.test_full_disk import _fill

PREPROCESS_FLAGS = ["--scale", str(DIGITS_PREPROCESS["scale"]), "--layout", DIGITS_PREPROCESS["layout"]]


@pytest.mark.slow
@pytest.mark.parametrize("to, mode", [("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32")])
def test_convert_on_a_full_disk_exits_12_and_leaves_nothing(tmp_path: Path, digits_keras: Path, digits_npz: tuple[Path, Path], to: str, mode: str) -> None:
    with mounted_tmpfs(tmp_path / "disk", "size=2m") as disk:
        _fill(disk, 0)
        work = tmp_path / "work"
        work.mkdir()
        output = disk / f"m_{mode}.{to}"
        completed = run_cli_in(work, "convert", digits_keras, "--to", to, "--quant", mode, "--calib", digits_npz[0], "--calib-samples", "20", *PREPROCESS_FLAGS, "-o", output)
        assert_refused(completed, 12, f"cannot write {output}", "No space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
        assert files_under(work) == {}


def test_convert_into_a_read_only_folder_is_refused_before_any_work(tmp_path: Path, digits_keras: Path) -> None:
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        completed = run_cli_in(tmp_path, "convert", digits_keras, "--to", "onnx", "-o", folder / "m.onnx")
        assert_refused(completed, 12, f"output folder {folder} is not writable", "Read-only file system", "nothing was done")
        assert "exporting" not in completed.stderr
