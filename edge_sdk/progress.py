"""Minimal progress reporting on stderr: a redrawn bar on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr

    def task(self, label: str, total: int | None) -> ProgressTask:
        return ProgressTask(self, label, total)

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)


class ProgressTask:
    def __init__(self, progress: Progress, label: str, total: int | None) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.done = 0
        self._last_draw = 0.0
        self._tty = progress.enabled and progress.stream.isatty()
        self._last_percent_line = -1

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.progress.enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._last_draw > 0.1 or self.done == self.total:
                self._draw()
                self._last_draw = now
        elif self.total:
            quarter = int(4 * self.done / self.total)
            if quarter > self._last_percent_line:
                self._last_percent_line = quarter
                print(f"{self.label}: {self.done}/{self.total}", file=self.progress.stream, flush=True)

    def _draw(self) -> None:
        if self.total:
            width = 30
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r{self.label} [{bar}] {self.done}/{self.total}"
        else:
            text = f"\r{self.label} {self.done}"
        self.progress.stream.write(text)
        self.progress.stream.flush()

    def close(self) -> None:
        if self._tty:
            self._draw()
            self.progress.stream.write("\n")
            self.progress.stream.flush()

    def __enter__(self) -> ProgressTask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
