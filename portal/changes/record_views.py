"""The printable record of a change: its PDF, built by a job, with progress while it
builds (routes on the changes blueprint)."""

from __future__ import annotations

from .views import bp  # noqa: F401
