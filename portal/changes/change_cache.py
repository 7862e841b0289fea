"""Answers about change requests that pages ask again and again (the approver's waiting
count, the calendar's changes, the list's totals), kept in the shared cache
(portal/cache.py) until a table they are read from changes.

Such an answer is read from several tables (changes, their votes, services, freezes),
while a cached value sits under the version of one namespace. So it is kept under the
first table's namespace with a key that carries a generation token of each other table:
a token is itself a shared value of its table's namespace, drawn afresh once a write
bumps that namespace, so a committed write to any of the tables leads to a new key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import TypeVar

from .. import cache

T = TypeVar("T")


def _generation(table: str) -> str:
    return cache.shared(table, "generation", lambda: secrets.token_hex(8))


def shared_across(tables: Sequence[str], key: str, compute: Callable[[], T]) -> T:
    """`cache.shared()` for a value read from every table in `tables`."""
    first, *others = tables
    tokens = ":".join(_generation(table) for table in others)
    return cache.shared(first, f"{key}:{tokens}", compute)
