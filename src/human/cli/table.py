"""Plain-text tables: no dependency, readable in any terminal and in a pipe. Given a
width (the terminal's), the widest columns are cut with "…" until each line fits."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from typing import TextIO

MIN_COLUMN = 6


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], max_width: int = 60,
          width: int | None = None) -> str:
    cells = [[_cut(str(cell), max_width) for cell in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]
    if width is not None:
        widths = _fit(widths, [len(h) for h in headers], width)
        cells = [[_cut(cell, w) for cell, w in zip(row, widths)] for row in cells]
    lines = ["  ".join(_cut(h, w).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def terminal_width(stream: TextIO | None = None) -> int | None:
    """$COLUMNS when set, else the width of the terminal `stream` is, else None (a pipe:
    nothing to fit)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return shutil.get_terminal_size().columns
    return None


def _fit(widths: list[int], floors: list[int], width: int) -> list[int]:
    """Shrink the widest column, one character at a time, until the line fits (or every
    column is at its floor: the header's length, at most MIN_COLUMN)."""
    widths = list(widths)
    floors = [min(floor, MIN_COLUMN) for floor in floors]
    while sum(widths) + 2 * (len(widths) - 1) > width:
        candidates = [i for i, w in enumerate(widths) if w > max(floors[i], MIN_COLUMN)]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
