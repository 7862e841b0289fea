"""An export's columns: each one value written the same way by both writers, in Python
(row by row, any database) and in SQL (PostgreSQL's COPY). Tests hold the two to the
same bytes.

What a cell must be to open cleanly in Excel and LibreOffice: text that starts with
`=`, `+`, `-`, `@`, a tab or a carriage return is defused with a leading apostrophe
(otherwise a subject like `=HYPERLINK(...)` runs as a formula); times are ISO 8601 in the
reader's zone with its UTC offset; empty and missing values are both an empty cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, String, case, cast, func, literal, null, select
from sqlalchemy.sql.elements import ColumnElement

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class Format:
    """How one kind of value becomes a cell: `py` for a value read into Python, `sql`
    for the same as an SQL expression (PostgreSQL; session time zone = the reader's)."""

    py: Callable[[Any, ZoneInfo], str]
    sql: Callable[[ColumnElement[Any]], ColumnElement[Any]]


def _text_py(value: Any, zone: ZoneInfo) -> str:
    return "" if value is None else defuse(str(value))


def _text_sql(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    # ascii() of the first character: the cheapest test PostgreSQL has, once per cell.
    text = cast(expr, String)
    return case(
        (func.ascii(text).in_([ord(c) for c in FORMULA_STARTS]), literal("'") + text),
        else_=func.nullif(text, ""),
    )


def defused(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """`defuse` as SQL any database runs: for names looked up once per person or team in a
    subquery (`lookup`), instead of once per exported row."""
    return case(
        (func.substr(expr, 1, 1).in_(FORMULA_STARTS), literal("'") + expr),
        else_=func.nullif(expr, ""),
    )


def lookup(*columns: ColumnElement[Any]) -> Any:
    """A small table's rows with their cells already made (see `defused`), to join to.
    OFFSET 0 keeps PostgreSQL from merging it into the outer query, which would make
    them again for every row that joins them."""
    return select(*columns).offset(0).subquery()


def people() -> Any:
    """Users' names and emails, defused once each (see `lookup`); alias it per role."""
    from ..users.models import User

    return lookup(User.id, defused(User.name).label("name"), defused(User.email).label("email"))


def _plain_py(value: Any, zone: ZoneInfo) -> str:
    return "" if value is None else str(value)


def _int_py(value: Any, zone: ZoneInfo) -> str:
    return "" if value is None else str(int(value))


def _time_py(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).isoformat(timespec="seconds")


def _time_sql(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    # The stored time is naive UTC; as a timestamptz, to_char writes it in the session's zone.
    return func.to_char(func.timezone("UTC", expr), 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')


def _minutes_py(value: Any, zone: ZoneInfo) -> str:
    return "" if value is None else str(int(value) // 60)


def _bool_py(value: Any, zone: ZoneInfo) -> str:
    return "" if value is None else ("yes" if value else "no")


def _bool_sql(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((expr.is_(True), "yes"), (expr.is_(False), "no"), else_=null())


TEXT = Format(_text_py, _text_sql)
# Values the portal itself chose (a status, a priority) or already defused (`lookup`).
# Never an empty string, so nothing to tell apart from a missing value: written as it is.
PLAIN = Format(_plain_py, lambda expr: expr)
# COPY writes numbers as digits itself, as str() does.
INT = Format(_int_py, lambda expr: expr)
TIME = Format(_time_py, _time_sql)
# Stored seconds shown as whole minutes (rounded down, as in the SQL).
MINUTES = Format(_minutes_py, lambda expr: cast(expr, Integer) // 60)
BOOL = Format(_bool_py, _bool_sql)


def number_format(prefix: str) -> Format:
    """`T-000123`: an id with a prefix, at least six digits."""

    def py(value: Any, zone: ZoneInfo) -> str:
        return f"{prefix}{int(value):06d}"

    def sql(expr: ColumnElement[Any]) -> ColumnElement[Any]:
        digits = cast(expr, String)
        # lpad cuts a longer string down to the width: past 999,999 the id is written whole.
        padded = case((expr < 1_000_000, func.lpad(digits, 6, "0")), else_=digits)
        return literal(prefix) + padded

    return Format(py, sql)


@dataclass(frozen=True)
class Column:
    header: str
    expr: ColumnElement[Any]
    format: Format = TEXT


@dataclass(frozen=True)
class Plan:
    """An export's columns and its rows: `statement` selects exactly the columns' values."""

    columns: list[Column]
    statement: Select[Any]
    # The list's own query, for the row count (the lookups joined above never add rows).
    listed: Select[Any]

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]
