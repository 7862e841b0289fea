"""Full-text search over tickets: subject, description and public replies.

The index lives in the database and is kept current by triggers (migration
0004): a `tsvector` table with a GIN index on PostgreSQL, an FTS5 table on
SQLite, both named `ticket_search` and keyed by the ticket id. Internal notes
are never indexed, so no query, whoever runs it, can reveal their words.

User text never reaches a query parser as syntax: it is cut into words (runs
of letters and digits, as both databases' tokenizers cut the documents), each
word is quoted, the last one is matched as a prefix (the list searches while
people type) and the number of words is capped. Text without a word matches
nothing.
"""

from __future__ import annotations

import re

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Subquery,
    any_,
    false,
    func,
    literal_column,
    select,
)
from sqlalchemy.sql import column, table

from ..extensions import db
from .models import Ticket

SEARCH_TABLE = "ticket_search"
MAX_TERMS = 8
# A one-letter prefix matches a large part of any vocabulary: too slow to be useful.
MIN_PREFIX = 2
# Longer input carries no more useful words; the regex below never scans more.
MAX_TEXT = 1000
# Subject, description, replies: a word in the subject says most about the ticket.
SQLITE_WEIGHTS = (10.0, 4.0, 1.0)

_WORD = re.compile(r"[^\W_]+")

_postgres_search = table(SEARCH_TABLE, column("ticket_id", Integer), column("document"))
# FTS5 exposes a hidden column named after the table: the left side of MATCH.
_sqlite_search = table(SEARCH_TABLE, column("rowid", Integer), column(SEARCH_TABLE))


def is_search_object(name: str | None) -> bool:
    """The tables, indexes and shadow tables of the search index, which are not models:
    schema comparisons (autogenerate, the drift test) leave them out."""
    return bool(name) and str(name).startswith(SEARCH_TABLE)


def terms(text: str) -> list[str]:
    """The distinct words of `text`, at most MAX_TERMS, in the order typed."""
    words: list[str] = []
    seen: set[str] = set()
    for match in _WORD.finditer(text[:MAX_TEXT]):
        word = match.group()
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            words.append(word)
        if len(words) == MAX_TERMS:
            break
    return words


def _prefix_last(words: list[str]) -> bool:
    return len(words[-1]) >= MIN_PREFIX


def postgres_query(words: list[str]) -> str:
    """A to_tsquery() text: quoted words joined by AND, the last one a prefix."""
    quoted = [f"'{w}'" for w in words]
    if _prefix_last(words):
        quoted[-1] += ":*"
    return " & ".join(quoted)


def sqlite_query(words: list[str]) -> str:
    """An FTS5 query: one quoted string per word (implicit AND), the last one a prefix."""
    quoted = [f'"{w}"' for w in words]
    if _prefix_last(words):
        quoted[-1] += "*"
    return " ".join(quoted)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _postgres_tsquery(words: list[str]) -> ColumnElement[object]:
    return func.to_tsquery(literal_column("'simple'"), postgres_query(words))


def _postgres_match(words: list[str]) -> ColumnElement[bool]:
    return _postgres_search.c.document.bool_op("@@")(_postgres_tsquery(words))


def _sqlite_match(words: list[str]) -> ColumnElement[bool]:
    return _sqlite_search.c[SEARCH_TABLE].bool_op("MATCH")(sqlite_query(words))


def match_clause(text: str, all_matches: bool = False) -> ColumnElement[bool]:
    """A condition on Ticket.id: the tickets whose indexed text holds every word of
    `text` (the last one as a prefix). Nothing matches text without a word.

    `all_matches` is for a query that reads every match (counting them): PostgreSQL then
    looks each one up by id, where for `IN` it would read the whole tickets table to hash
    join thousands of matches. A page of matches is better served by `IN`, which lets it
    walk the newest tickets and stop at the page's end."""
    words = terms(text)
    if not words:
        return false()
    dialect = _dialect()
    if dialect == "postgresql":
        hits = select(_postgres_search.c.ticket_id).where(_postgres_match(words))
        if all_matches:
            return Ticket.id == any_(func.array(hits.scalar_subquery()))
    elif dialect == "sqlite":
        hits = select(_sqlite_search.c.rowid).where(_sqlite_match(words))
    else:
        raise NotImplementedError(f"no ticket search for {dialect}")
    return Ticket.id.in_(hits)


def ranked_matches(text: str) -> Subquery | None:
    """The tickets `match_clause(text)` selects as rows of (ticket_id, score), the best
    match having the lowest score; None when `text` has no word.

    Joined to the list's query rather than asked per listed ticket: the full-text
    engine scores every match in the one pass that finds them.
    """
    words = terms(text)
    if not words:
        return None
    dialect = _dialect()
    if dialect == "postgresql":
        score = -func.ts_rank(_postgres_search.c.document, _postgres_tsquery(words))
        hits = select(_postgres_search.c.ticket_id.label("ticket_id"), score.label("score"))
        return hits.where(_postgres_match(words)).subquery("search_hits")
    if dialect == "sqlite":
        # bm25() is defined only within a full-text query; it is already lower-is-better.
        score = func.bm25(literal_column(SEARCH_TABLE), *SQLITE_WEIGHTS, type_=Float)
        hits = select(_sqlite_search.c.rowid.label("ticket_id"), score.label("score"))
        return hits.where(_sqlite_match(words)).subquery("search_hits")
    raise NotImplementedError(f"no ticket search for {dialect}")
