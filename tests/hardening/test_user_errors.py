"""User errors that used to end in a Python traceback, and the other members of each class: each one exits with its
code and one message naming the file or setting, prints no traceback, writes nothing outside the output and loses
nothing (earlier results and inputs are untouched)."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.hardening.conftest import assert_refused, cli_env, edge_sdk_command, files_under, mounted_tmpfs, run_cli_in


@pytest.fixture
def work(tmp_path: Path, hello_world: Path) -> Path:
    (tmp_path / "m.tflite").write_bytes(hello_world.read_bytes())
    np.savez(tmp_path / "sine.npz", x=np.linspace(0.0, 6.28, 40, dtype=np.float32)[:, None])
    (tmp_path / "out").mkdir()
    return tmp_path


def bench(work: Path, *extra: str | Path, data: str | Path = "sine.npz") -> list[str | Path]:
    return ["bench", work / "m.tflite", "--data", work / data, "--runs", "2", "--warmup", "0", "-o", work / "out" / "r.json", *extra]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height pixels (IHDR) and holds no pixels: what a decoder sizes its buffer from."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b""))
    return path


def npy_with_shape(path: Path, shape: tuple[int, ...]) -> Path:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
    header += " " * (-(len(header) + 11) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(64))
    return path


CASES = {
    # name: (make(work) -> argv, exit code, fragments)
    "npy header with a negative dimension": (lambda w: bench(w, data=npy_with_shape(w / "neg.npy", (-1, 1))), 4, ["neg.npy has a damaged header: shape (-1, 1) has a negative size"]),
    "seed -1": (lambda w: bench(w, "--seed", "-1"), 2, ["'seed' must be at least 0, got -1"]),
    "samples 0": (lambda w: bench(w, "--samples", "0"), 2, ["'max_samples' must be at least 1, got 0"]),
    "samples negative": (lambda w: bench(w, "--samples", "-5"), 2, ["'max_samples' must be at least 1, got -5"]),
    "NaN in the data": (lambda w: bench(w, data=_npz(w / "nan.npz", x=np.full((4, 1), np.nan, np.float32))), 4, ["sample", "nan.npz:x[0] contains NaN or Inf values"]),
    "object data": (lambda w: bench(w, data=_object_npz(w / "obj.npz")), 4, ["obj.npz:x holds Python objects"]),
    "20000x20000 PNG in an image folder": (lambda w: bench(w, "--resize", "1,1", data=_image_folder(w)), 4, ["big.png declares too many pixels to decode", "400000000 pixels"]),
    "preprocess scale 'abc' at bench": (lambda w: bench(w, "--preprocess", _json(w / "pre.json", {"scale": "abc"})), 2, ["preprocessing scale='abc' must be a number"]),
    "preprocess file that is a list": (lambda w: bench(w, "--preprocess", _json(w / "pre.json", [1, 2])), 2, ["must hold a JSON object of settings, not list"]),
    "bench -o name over the file-system limit": (lambda w: ["bench", w / "m.tflite", "--data", w / "sine.npz", "-o", w / "out" / ("r" * 300 + ".json")], 2, ["--output", "too long for the file system", "305 bytes in one name"]),
    "report -o name over the limit": (lambda w: ["report", w / "r0.json", "-o", w / "out" / ("r" * 300 + ".html")], 2, ["too long for the file system"]),
    "convert -o name over the limit": (lambda w: ["convert", w / "m.tflite", "-o", w / "out" / ("m" * 300 + ".tflite")], 2, ["--output", "too long for the file system"]),
    "inspect a name over the limit": (lambda w: ["inspect", w / ("m" * 300 + ".tflite")], 2, ["artifact", "too long for the file system"]),
    "FIFO as data": (lambda w: bench(w, data=_fifo(w / "fifo.npz")), 4, ["fifo.npz is not a regular file"]),
    "FIFO as the model to convert": (lambda w: ["convert", _fifo(w / "fifo.h5"), "-o", w / "out" / "m.tflite"], 3, ["fifo.h5 is not a regular file"]),
    "socket as the artifact to inspect": (lambda w: ["inspect", _socket(w / "s.tflite")], 3, ["s.tflite is not a regular file"]),
    "device file as data": (lambda w: bench(w, data="/dev/zero"), 4, ["/dev/zero is not a regular file"]),
    "FIFO as --preprocess": (lambda w: bench(w, "--preprocess", _fifo(w / "pre.json")), 2, ["pre.json is not a regular file"]),
    "missing --ssh-key": (lambda w: bench(w, "--host", "ssh://pi@127.0.0.1:1", "--target", "raspberry-pi-4", "--ssh-key", w / "no_key"), 2, ["--ssh-key", "no_key does not exist"]),
    "missing --known-hosts": (lambda w: bench(w, "--host", "ssh://pi@127.0.0.1:1", "--target", "raspberry-pi-4", "--known-hosts", w / "no_hosts"), 2, ["--known-hosts", "no_hosts does not exist"]),
}


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _object_npz(path: Path) -> Path:
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object))
    return path


def _image_folder(work: Path) -> Path:
    folder = work / "images"
    folder.mkdir()
    png_header_only(folder / "big.png", 20000, 20000)
    return folder


def _json(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload))
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # the file stays after the socket closes
    server.close()
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_user_error_gets_its_exit_code_and_one_message(work, case):
    make, exit_code, fragments = CASES[case]
    (work / "r0.json").write_text("{}")
    argv = make(work)
    before = files_under(work)
    completed = run_cli_in(work, *argv, timeout=120)
    assert_refused(completed, exit_code, *fragments)
    assert files_under(work) == before, "something was written or changed"


def test_report_output_that_is_one_of_its_inputs_is_refused_and_the_input_untouched(work):
    assert run_cli_in(work, *bench(work)).returncode == 0
    results = work / "out" / "r.json"
    before = results.read_bytes()
    for extra in ([], ["--overwrite"]):
        completed = run_cli_in(work, "report", results, "-o", results, *extra)
        assert_refused(completed, 2, f"-o {results} is also one of the results files read")
        assert results.read_bytes() == before


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Path:
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        yield folder


def test_a_read_only_output_folder_is_refused_before_any_work(work, read_only_folder):
    completed = run_cli_in(work, "bench", work / "m.tflite", "--data", work / "sine.npz", "--runs", "2", "-o", read_only_folder / "r.json")
    assert_refused(completed, 12, f"results folder {read_only_folder} is not writable", "Read-only file system", "nothing was done")
    assert "measuring" not in completed.stderr and ".partial" not in completed.stderr


def test_a_second_bench_on_the_same_output_exits_8_naming_the_first_ones_pid(work):
    output = work / "out" / "r.json"
    first = subprocess.Popen(edge_sdk_command("bench", work / "m.tflite", "--data", work / "sine.npz", "--runs", "3000000", "--warmup", "0", "-o", output, "--quiet"),
                             env=cli_env(), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = output.with_name(".r.json.lock")
        for _ in range(600):
            if lock.exists() and lock.read_text().strip():
                break
            assert first.poll() is None, first.communicate()
            import time

            time.sleep(0.05)
        completed = run_cli_in(work, "bench", work / "m.tflite", "--data", work / "sine.npz", "--runs", "2", "-o", output)
        assert_refused(completed, 8, f"results file {output} is being written by another edge-sdk process (pid {first.pid})")
        assert "measuring" not in completed.stderr  # refused before any work
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert not output.with_name(".r.json.lock").exists()
