"""The input shapes a debug run uses (its own module: the per-format debuggers import it, and the package imports them)."""

from __future__ import annotations


def shapes_for_debug(recorded: dict[str, list[int]], given: dict[str, list[int]] | None) -> dict[str, list[int]]:
    """The input shapes a debug run uses: the manifest's recorded ones, with those given by --input-shape in their
    place (the name '' stands for the only input)."""
    from edge_sdk.errors import UsageError

    shapes = {name: list(shape) for name, shape in (recorded or {}).items()}
    for name, shape in (given or {}).items():
        if name == "" and len(shapes) == 1:
            name = next(iter(shapes))
        if shapes and name not in shapes:
            raise UsageError(f"--input-shape names {name or '(no name)'!r}, but the artifact's inputs are {sorted(shapes)}", fix="name an input: --input-shape NAME:DIMS")
        shapes[name] = list(shape)
    return shapes
