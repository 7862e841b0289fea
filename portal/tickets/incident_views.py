"""Routes registered on the tickets blueprint (see views.py)."""

from .views import bp  # noqa: F401
