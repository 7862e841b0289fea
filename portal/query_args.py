"""A list's filters in the query string, both ways: read leniently (an unknown or
malformed value is dropped, never an error) and written back without the defaults, so
links and bookmarks stay short."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar


def positive_int(value: Any) -> int | None:
    """An id-like number, or None: anything a database integer cannot hold is dropped."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None


def pick(args: Any, name: str, allowed: tuple[str, ...]) -> str:
    value = args.get(name, "")
    return value if value in allowed else ""


class QueryArgs:
    """For a frozen dataclass of filters: `as_args()` gives its query-string arguments."""

    DEFAULT_SORT: ClassVar[str] = ""

    def as_args(self, **changes: Any) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        values.update(changes)
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value in ("", None, False) or (key == "page" and value == 1):
                continue
            if key == "sort" and value == self.DEFAULT_SORT:
                continue
            out[key] = self.arg_value(key, value)
        return out

    def arg_value(self, key: str, value: Any) -> Any:
        """How one set filter is written in the query string."""
        return 1 if value is True else value
