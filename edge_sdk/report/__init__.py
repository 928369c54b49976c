"""Benchmark reports: renderings of results JSON files (Markdown, self-contained HTML) and a compare that gates CI.

The JSON written by `edge-sdk bench -o` is the source of truth; reports only render it, with simple derived
ratios (size against the float artifact, p99/p50) and never a re-measurement. matplotlib is imported only
when an HTML report draws its plots.
"""

from __future__ import annotations

from edge_sdk.report.api import REPORT_FORMATS, render_report, report_document, report_format_for, write_report
from edge_sdk.report.compare import Comparison, RegressionError, compare_files, compare_documents, parse_percent
from edge_sdk.report.model import ArtifactRow, ReportModel, build_model
from edge_sdk.report.warnings import WarningPolicy

__all__ = [
    "REPORT_FORMATS",
    "ArtifactRow",
    "Comparison",
    "RegressionError",
    "ReportModel",
    "WarningPolicy",
    "build_model",
    "compare_documents",
    "compare_files",
    "parse_percent",
    "render_report",
    "report_document",
    "report_format_for",
    "write_report",
]
