"""A report's figures, shared by everyone who opens the same report (same period, days,
zone and filters) until a table they are counted from changes: the figures are
aggregates over tens of thousands of rows, the same for every viewer, and asked for by
every refresh of a page or panel. Kept as JSON in the shared cache (portal/cache.py),
so every web process sees one copy and one invalidation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from .. import cache
from .figures import Figure
from .period import ReportPeriod


def _to_json(figure: Figure) -> dict[str, Any]:
    return {
        "key": figure.key,
        "title": figure.title,
        "definition": figure.definition,
        "header": list(figure.header),
        "rows": [list(row) for row in figure.rows],
        "links": [[r, c, args] for (r, c), args in figure.links.items()],
        "unlinked": figure.unlinked,
        "chart": None
        if figure.chart is None
        else [figure.chart[0], list(figure.chart[1]), figure.chart[2]],
        "total_row": figure.total_row,
    }


def _from_json(data: dict[str, Any]) -> Figure:
    chart = data["chart"]
    return Figure(
        key=data["key"],
        title=data["title"],
        definition=data["definition"],
        header=tuple(data["header"]),
        rows=[tuple(row) for row in data["rows"]],
        links={(r, c): args for r, c, args in data["links"]},
        unlinked=data["unlinked"],
        chart=None if chart is None else (chart[0], tuple(chart[1]), chart[2]),
        total_row=data["total_row"],
    )


def digest_of(figures: Sequence[Figure]) -> str:
    """The same digest for the same figures, whoever computed them."""
    text = json.dumps([_to_json(f) for f in figures], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def shared_figures(
    report: str, period: ReportPeriod, tables: Sequence[str], compute: Callable[[], list[Figure]]
) -> list[Figure]:
    """`compute()`'s figures, or the copy another request computed for the same question
    since the last committed write to any of `tables`."""
    question = json.dumps(
        [report, period.as_args(), period.start.isoformat(), period.end.isoformat(), period.zone],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(question.encode()).hexdigest()[:32]
    found = cache.shared(tables, f"figures:{digest}", lambda: [_to_json(f) for f in compute()])
    return [_from_json(data) for data in found]
