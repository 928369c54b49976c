"""Quiet by default (edge_sdk/quiet.py, edge_sdk/progress.py): framework output is captured at the file-descriptor
level, shown with -v, kept with --log-file, its tail shown on failure; stdout carries only our output; a closed pipe
ends a command quietly; progress is one line per artifact per phase off a terminal, and bars on one."""

from __future__ import annotations

import json
import os
import fcntl
import pty
import struct
import subprocess
import sys
import termios
import textwrap

import pytest

# A stand-in for a framework call: what TensorFlow does on import and on export, at the C and the Python level.
NOISY = """
import os, sys, warnings, logging
os.write(1, b"C-level line on fd 1\\n")
os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit\\n")
print("Saved artifact at /tmp/x")
warnings.warn("a framework's Python warning")
logging.getLogger().warning("ORT root logger warning")
"""


def run_python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=120, **kwargs)


PROBE = """
import sys
from pathlib import Path
from edge_sdk import quiet
verbose, log_file, fail = sys.argv[1] == "1", (Path(sys.argv[2]) if sys.argv[2] != "-" else None), sys.argv[3] == "1"
quiet.configure(verbose=verbose, log_file=log_file)
with quiet.stdout_only_ours():
    try:
        with quiet.framework_output("loading a model"):
            exec(compile(sys.argv[4], "framework", "exec"))
            if fail:
                raise RuntimeError("the framework failed")
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
    print('{"ours": true}')
"""


def test_framework_output_is_captured_and_stdout_stays_ours(tmp_path):
    quiet = run_python(PROBE, "0", "-", "0", NOISY)
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout) == {"ours": True}  # nothing but our JSON on stdout
    assert quiet.stderr == ""  # and nothing from the "framework" on stderr either


def test_verbose_shows_it_on_stderr_and_never_on_stdout():
    verbose = run_python(PROBE, "1", "-", "0", NOISY)
    assert json.loads(verbose.stdout) == {"ours": True}
    for line in ("C-level line on fd 1", "failed call to cuInit", "Saved artifact at /tmp/x", "a framework's Python warning", "ORT root logger warning"):
        assert line in verbose.stderr


def test_log_file_keeps_it_under_a_heading(tmp_path):
    log = tmp_path / "logs" / "edge-sdk.log"
    logged = run_python(PROBE, "0", str(log), "0", NOISY)
    assert json.loads(logged.stdout) == {"ours": True} and logged.stderr == ""
    text = log.read_text()
    assert text.startswith("--- loading a model ---\n") and "failed call to cuInit" in text and "Saved artifact at /tmp/x" in text


def test_on_failure_the_captured_tail_is_shown():
    failed = run_python(PROBE, "0", "-", "1", NOISY)
    assert "framework output while loading a model, last 25 lines (run with -v to see all of it):" in failed.stderr
    assert "failed call to cuInit" in failed.stderr and "error: the framework failed" in failed.stderr
    assert json.loads(failed.stdout) == {"ours": True}


def test_progress_off_a_terminal_is_one_line_per_artifact_per_phase_and_no_counters():
    code = """
    import io
    from edge_sdk.progress import Progress
    stream = io.StringIO()
    progress = Progress(stream=stream)
    progress.begin(3)
    progress.step("convert", "m -> tflite int8")
    with progress.task("calibrate", 300) as task:
        for _ in range(300):
            task.advance()
    progress.message("a detail, shown with -v only")
    progress.step("bench", "m_int8.tflite")
    progress.step("report", "out/")
    progress.end()
    print(stream.getvalue(), end="")
    """
    out = run_python(code)
    assert out.stdout.splitlines() == ["convert: m -> tflite int8", "bench: m_int8.tflite", "report: out/"], out.stderr


def test_progress_on_a_terminal_draws_an_overall_bar_with_an_eta():
    code = """
    import sys, time
    from edge_sdk.progress import Progress
    progress = Progress(stream=sys.stderr)
    assert progress.on_terminal
    progress.begin(2)
    progress.step("bench", "a.tflite")
    with progress.task("evaluate a.tflite", 50) as task:
        for _ in range(50):
            task.advance()
    progress.step("bench", "b.tflite")
    progress.end()
    """
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal 120 columns wide
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the pty closes when the child exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=60) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "bench b.tflite 2/2" in screen and "<00:00" in screen  # k/N, then elapsed<remaining (the ETA)


@pytest.mark.parametrize("argv", [["targets", "--json"], ["targets"], ["--help"]])
def test_a_closed_pipe_ends_a_command_quietly(argv):
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the command writes a byte
    done = subprocess.run([sys.executable, "-m", "edge_sdk", *argv], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode in (0, 141), done.stderr  # --help exits through argparse before our handler: 0


def test_stdout_only_ours_restores_stdout(tmp_path):
    code = """
    import os, sys
    from edge_sdk import quiet
    with quiet.stdout_only_ours():
        os.write(1, b"stray\\n")
        print("ours")
    print("after")
    """
    out = run_python(code)
    assert out.stdout == "ours\nafter\n" and out.stderr == "stray\n"


def test_reference_outputs_are_computed_once_per_model_data_and_preprocessing(digits_artifacts, digits_keras, digits_npz):
    import edge_sdk
    from edge_sdk.bench import REFERENCE_OUTPUTS, BenchSettings

    REFERENCE_OUTPUTS.clear()
    settings = BenchSettings(runs=3, warmup=0)
    first = edge_sdk.benchmark([digits_artifacts["fp32"], digits_artifacts["int8"]], digits_npz[1], reference=digits_keras, settings=settings)
    assert [r.reference["cache"] for r in first] == ["computed", "reused"]
    # Another call in the same process, the same model, data and preprocessing: reused; other samples: computed.
    again = edge_sdk.benchmark([digits_artifacts["int8"]], digits_npz[1], reference=digits_keras, settings=settings)
    assert again[0].reference["cache"] == "reused"
    subset = edge_sdk.benchmark([digits_artifacts["int8"]], digits_npz[1], reference=digits_keras, settings=BenchSettings(runs=3, warmup=0, max_samples=50))
    assert subset[0].reference["cache"] == "computed"
    assert again[0].reference["fidelity"] == first[1].reference["fidelity"]
