"""Converters, one module per output format, looked up through edge_sdk.formats.FORMATS.

Each format module holds a `BUILDER` (converters.base.Builder): the format's steps inside the shared template
`converters.base.convert_with`. Typed options live in converters.options.
"""

from __future__ import annotations

from types import ModuleType

from edge_sdk.formats import format_named


def converter_module(format_name: str) -> ModuleType:
    """The module whose `BUILDER` makes this format."""
    return format_named(format_name).converter()  # type: ignore[no-any-return]
