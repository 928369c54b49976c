"""The documented deployment files stay in step with the CLI: the systemd unit's command line parses."""

from __future__ import annotations

import shlex

from edge_sdk.cli import build_parser
from tests.conftest import REPO

UNIT = REPO / "tools" / "systemd" / "edge-sdk-serve.service"


def test_systemd_unit_runs_a_command_the_cli_accepts():
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1
    argv = shlex.split(lines[0].removeprefix("ExecStart="))
    assert argv[0].endswith("/edge-sdk") and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.token_file is not None, "a unit serving the network keeps its token"
    assert "KillSignal=SIGTERM" in UNIT.read_text()
