"""Answers about many tickets that many people ask alike, shared by everyone who sees
the same tickets and kept until a ticket changes: the list's status counts and the open
major incidents of the banner on every page.

Counting the statuses over the whole desk is the list's dearest query (an index scan over
every ticket), and every agent opening the default list asks the same question. So the
answers are cached under a version that any committed write to `tickets` moves on: one is
never older than the last change anyone committed, and at most
`SHARED_CACHE_SECONDS` old when tickets were changed behind the portal's back.
A search's counts are kept too: clicking through its status tabs, paging, or another
person looking for the same outage asks the same question again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from .. import cache
from ..users.models import User
from .access import sees_all
from .models import Ticket

NAMESPACE = Ticket.__tablename__
T = TypeVar("T")


def _remember(kind: str, scope: str, question: Any, compute: Callable[[], T]) -> T:
    digest = hashlib.sha256(json.dumps([scope, question], sort_keys=True).encode()).hexdigest()
    return cache.shared(NAMESPACE, f"{kind}:{digest[:32]}", compute)


def _scope(user: User, personal: bool = False) -> str:
    """Whose tickets an answer is about: the whole desk's, or this person's own."""
    return "all" if sees_all(user) and not personal else f"user:{user.id}"


def counts(filters: Any, user: User, compute: Callable[[], dict[str, int]]) -> dict[str, int]:
    """`compute()`'s status counts for these filters (search text included)."""
    args = filters.without_status().as_args(sort="relevance", page=1)
    return _remember("counts", _scope(user, filters.mine), args, compute)


def major_incidents(
    user: User, compute: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The banner's open P0/P1 incidents (as plain values) that `user` may see."""
    return _remember("banner", _scope(user), None, compute)
