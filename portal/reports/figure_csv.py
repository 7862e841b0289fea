"""A report's figures as CSV: one figure's table (the page's CSV link), or every figure
of a report one after another (the scheduled report's file). Every cell defused."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from .columns import defuse
from .figures import Figure


def _write(writer: csv.writer, figure: Figure) -> None:  # type: ignore[valid-type]
    writer.writerow([defuse(str(cell)) for cell in figure.header])
    for row in figure.rows:
        writer.writerow(["" if cell is None else defuse(str(cell)) for cell in row])


def figure_csv(figure: Figure) -> str:
    """One figure's table as CSV text: a header row, then its rows."""
    out = io.StringIO()
    _write(csv.writer(out, lineterminator="\r\n"), figure)
    return out.getvalue()


def figures_csv(figures: Sequence[Figure]) -> str:
    """Every figure: its title on a line of its own, its table, then an empty line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for figure in figures:
        writer.writerow([defuse(figure.title)])
        _write(writer, figure)
        writer.writerow([])
    return out.getvalue()
