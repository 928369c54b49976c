"""One exception hierarchy for the whole SDK.

Every error names the file or setting at fault and what to do about it; the CLI prints
`str(error)` and exits with `error.exit_code`.
"""

from __future__ import annotations


class EdgeSdkError(Exception):
    """Base class: a problem the user can fix. `fix` says how."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message)

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message


class UsageError(EdgeSdkError):
    """A bad flag, option or setting value."""

    exit_code = 2


class ModelFileError(EdgeSdkError):
    """A model or artifact file that is missing, unreadable, corrupt or of an unknown kind."""

    exit_code = 3


class DataError(EdgeSdkError):
    """Calibration or evaluation data that cannot be used with the model."""

    exit_code = 4


class DataFileError(DataError):
    """The data file itself cannot be used (unreadable, damaged, NaN, too large): every model would fail on it,
    so a bench stops at once (exit 4) instead of recording the same error against each artifact."""


class MissingDependencyError(EdgeSdkError):
    """An optional runtime or framework is not installed."""

    exit_code = 5


class ConversionError(EdgeSdkError):
    """The converter failed or produced an artifact that does not behave like its source."""

    exit_code = 6


class RuntimeFailure(EdgeSdkError):
    """The runtime refused or failed to run an artifact."""

    exit_code = 7


class OutputExistsError(EdgeSdkError):
    """An output file exists and would be overwritten."""

    exit_code = 8


class DeviceError(EdgeSdkError):
    """A device could not be reached, refused the connection or its host key, or was lost mid-run (ssh, adb)."""

    exit_code = 11


class OutputWriteError(EdgeSdkError):
    """An output could not be written (disk full, read-only, quota); the partial file was removed."""

    exit_code = 12


class InterruptedRun(EdgeSdkError):
    """A bench or pipeline stopped by Ctrl-C (SIGINT) or SIGTERM; finished results are kept for a re-run to resume."""

    exit_code = 130
