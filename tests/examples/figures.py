"""Read the `name: value` figures an example or a bench script prints (examples/compression/common.print_figures)."""

from __future__ import annotations

import re

FIGURE = re.compile(r"^([a-z][a-z0-9_]*): (\S.*)$")


def printed_figures(text: str) -> dict[str, str]:
    """Every `name: value` line of `text` (a later line wins)."""
    return {match[1]: match[2].strip() for match in map(FIGURE.match, text.splitlines()) if match}
