"""Progress on our stderr (edge_sdk.quiet.our_stderr, never muted by a framework capture).

On a terminal: one overall bar (artifact k/N with an ETA) and a stage bar under it for the step in progress, both
tqdm. Not on a terminal (a CI log, a pipe): one line per artifact per phase ("convert: ...", "bench: ...",
"report: ..."), and no counters. Detail messages (what a converter is doing) show only with -v/--verbose.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, verbose: bool | None = None) -> None:
        from edge_sdk import quiet

        self.enabled = enabled
        self.stream = stream or (quiet.our_stderr() if enabled else sys.stderr)
        self.verbose = quiet.settings().verbose if verbose is None else verbose
        self._tty = enabled and _isatty(self.stream)
        self._overall: Any = None
        self._steps_open = 0

    @property
    def on_terminal(self) -> bool:
        return self._tty

    def begin(self, total_steps: int, label: str = "artifacts") -> None:
        """Start the overall bar (a terminal only): `total_steps` steps (convert, bench, report ...)."""
        if self._tty and total_steps > 0:
            from tqdm import tqdm

            self._overall = tqdm(total=total_steps, desc=label, unit="step", file=self.stream, position=0, leave=True, dynamic_ncols=True,
                                 bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}")

    def step(self, phase: str, name: str) -> None:
        """A step starts: one line when not on a terminal; the overall bar's caption on one (the previous step is done)."""
        if not self.enabled:
            return
        if self._overall is not None:
            if self._steps_open:
                self._overall.update(1)
            self._steps_open = 1
            self._overall.set_description_str(f"{phase} {name}")
        elif not self._tty:
            print(f"{phase}: {name}", file=self.stream, flush=True)

    def end(self) -> None:
        """Close the overall bar (the last step is done)."""
        if self._overall is not None:
            if self._steps_open:
                self._overall.update(1)
            self._overall.close()
            self._overall = None
            self._steps_open = 0

    def task(self, label: str, total: int | None) -> ProgressTask:
        """A stage with a known size (samples to evaluate, runs to time): a second bar on a terminal, silent otherwise."""
        return ProgressTask(self, label, total)

    def message(self, text: str) -> None:
        """A detail: shown with -v/--verbose only (above the bars on a terminal)."""
        if not (self.enabled and self.verbose):
            return
        if self._tty:
            from tqdm import tqdm

            tqdm.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


class ProgressTask:
    def __init__(self, progress: Progress, label: str, total: int | None) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.done = 0
        self._bar: Any = None
        if progress.on_terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, file=progress.stream, position=1, leave=False, dynamic_ncols=True, mininterval=0.2)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
