"""CLI conventions (issue 16): help and a shown default on every flag, one name for the float model (`--reference`,
old names kept as deprecated aliases), shell completion, plain names in the terminal."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from edge_sdk.cli import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_flag_has_help_and_its_default_is_shown(name):
    parser = subcommands()[name]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = " ".join(parser.format_help().split())  # unwrapped
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"default: {action.default}" in text or "default" in (action.help or ""), f"{name} {action.option_strings}: default not shown"


def test_the_float_model_is_reference_everywhere_and_old_names_still_work(capsys):
    for name, parser in subcommands().items():
        options = {option for action in parser._actions for option in action.option_strings}
        if name == "loadtest":  # its --model names a model on the server (the protocol's model name), not a float model
            continue
        if "--model" in options or "--reference" in options:
            assert "--reference" in options, f"{name}: the float model is --reference"
    args = build_parser().parse_args(["check-calib", "c.npz", "--data", "d.npz", "--model", "m.keras"])
    assert str(args.model) == "m.keras" and "--model is deprecated; use --reference" in capsys.readouterr().err
    assert str(build_parser().parse_args(["check-calib", "c.npz", "--data", "d.npz", "--reference", "m.keras"]).model) == "m.keras"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_shell_completion_script_names_the_commands(shell):
    done = subprocess.run([sys.executable, "-m", "edge_sdk", "completion", shell], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for command in ("convert", "bench", "report", "pipeline"):
        assert command in done.stdout
    if shell == "bash":
        checked = subprocess.run(["bash", "-n"], input=done.stdout, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr  # the script parses in bash


def test_compare_prints_plain_names_in_the_terminal():
    from edge_sdk.report.compare import compare_documents

    def document(p50):
        result = {"artifact": {"name": "student_qat.tflite", "size_bytes": 10}, "target": {"name": "desktop"}, "status": "ok",
                  "timing": {"latency": {"p50_ms": p50, "p99_ms": p50}}, "accuracy": {"top1": 0.9}}
        return {"results": [result]}

    comparison = compare_documents(document(1.0), document(1.0), baseline_label="a.json", new_label="b.json")
    assert "student_qat.tflite" in comparison.to_text() and "student\\_qat" not in comparison.to_text()
    assert "student\\_qat.tflite" in comparison.to_markdown()  # pasteable Markdown keeps its escapes
