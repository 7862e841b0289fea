"""Classifying and routing new tickets by the ordered routing rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select

from ..extensions import db
from .setup_models import Category, RoutingRule, Team

DEFAULT_TEAM_NAME = "General support"
# A rule's pattern runs against user text: bound its size so a crafted pattern
# cannot make routing slow (patterns are admin-entered, but still).
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Route:
    team: Team
    category: Category | None
    priority: str | None
    rule: RoutingRule | None


@lru_cache(maxsize=256)
def _compiled(match: str, is_regex: bool) -> re.Pattern[str] | None:
    if is_regex:
        try:
            return re.compile(match, re.IGNORECASE)
        except re.error:
            return None
    words = [re.escape(w) for w in match.split() if w]
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)


def rule_matches(rule: RoutingRule, text: str) -> bool:
    pattern = _compiled(rule.match, rule.is_regex)
    return bool(pattern and pattern.search(text[:MAX_TEXT]))


def default_team() -> Team:
    team = db.session.scalar(select(Team).where(Team.is_default.is_(True)))
    if team is None:
        team = db.session.scalar(select(Team).where(Team.name == DEFAULT_TEAM_NAME))
    if team is None:
        raise RuntimeError("No default team: the tickets migration seeds one")
    return team


def route(subject: str, description: str) -> Route:
    """The first active rule matching the subject or description; else the default team."""
    text = f"{subject}\n{description}"
    rules = db.session.scalars(
        select(RoutingRule).where(RoutingRule.is_active.is_(True)).order_by(RoutingRule.position)
    )
    for rule in rules:
        if rule_matches(rule, text):
            return Route(rule.team, rule.category, rule.priority, rule)
    return Route(default_team(), None, None, None)
