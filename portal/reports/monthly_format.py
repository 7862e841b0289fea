"""How the monthly report writes its values: months, local times, overruns and the
change of a figure against the month before."""

from __future__ import annotations

from datetime import date, datetime

from ..timeutil import to_zone


def month_name(first: date) -> str:
    return f"{first:%B %Y}"


def local_time(value: datetime | None, zone: str) -> str:
    local = to_zone(value, zone)
    return "—" if local is None else f"{local:%Y-%m-%d %H:%M}"


def duration(seconds: float) -> str:
    hours = int(seconds // 3600)
    days, hours = divmod(hours, 24)
    minutes = int(seconds % 3600 // 60)
    return f"{days} d {hours} h {minutes} min" if days else f"{hours} h {minutes} min"


def change_text(now: float | None, before: float | None, unit: str) -> str:
    """How `now` differs from `before`: counts with their percentage, rates in points."""
    if now is None or before is None:
        return "—"
    delta = round(now - before, 1)
    sign = "+" if delta > 0 else ""
    if unit == "%":
        return f"{sign}{delta:g} pts"
    if unit:
        return f"{sign}{delta:g}{unit}"
    relative = f" ({sign}{100.0 * delta / before:.1f} %)" if before else ""
    return f"{sign}{int(delta)}{relative}"


def shown(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:g}{unit}"
