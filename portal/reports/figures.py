"""What every report's figures share: the Figure a page, its chart, its CSV and a PDF all
read, and the SQL pieces more than one report counts with (percentiles on either
database, elapsed seconds, conditional counts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

NOT_LISTABLE = "The ticket list cannot filter by {}, so these counts are not linked."


@dataclass(frozen=True)
class Figure:
    """One table of figures. `links` maps (row, column) to the ticket list's query
    arguments; `chart` is (category column, value columns, stacked) or None."""

    key: str
    title: str
    definition: str
    header: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    links: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    unlinked: str = ""
    chart: tuple[int, tuple[int, ...], bool] | None = None
    # The last row sums the others: a chart leaves it out, or it would count all twice.
    total_row: bool = False


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def percent(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)


def elapsed_seconds(later: Any, earlier: Any, dialect: str) -> Any:
    """Seconds from `earlier` to `later` (stored naive-UTC times), as SQL on either database."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def percentile_row(
    label: str, value: Any, where: list[Any], dialect: str, with_mean: bool = False
) -> Any:
    """count, median and 90th percentile of `value` (seconds) where it is set; and its
    mean as a fifth column `with_mean`."""
    where = [value.is_not(None), *where]
    if dialect == "postgresql":
        return select(
            literal(label),
            func.count(value),
            func.percentile_cont(0.5).within_group(value),
            func.percentile_cont(0.9).within_group(value),
            *([func.avg(value)] if with_mean else []),
        ).where(*where)
    # percentile_cont by hand: the value at position p·(n−1) of the sorted values, read
    # between the two neighbouring rows by linear interpolation, as PostgreSQL does.
    ranked = (
        select(
            value.label("x"),
            (func.row_number().over(order_by=value) - 1).label("k"),
            func.count().over().label("n"),
        )
        .where(*where)
        .subquery()
    )

    def cont(p: float) -> Any:
        position = literal(p) * (ranked.c.n - 1)
        low = cast(position, Integer)
        weight = position - low
        return func.sum(
            case(
                (ranked.c.k == low, ranked.c.x * (1 - weight)),
                (ranked.c.k == low + 1, ranked.c.x * weight),
                else_=0,
            )
        )

    return select(
        literal(label),
        func.coalesce(func.max(ranked.c.n), 0),
        cont(0.5),
        cont(0.9),
        *([func.avg(ranked.c.x)] if with_mean else []),
    )


def minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds) / 60, 1)
