"""The change calendar: scheduled and running changes and freeze periods by month and
week (routes on the changes blueprint)."""

from __future__ import annotations

from .views import bp  # noqa: F401
