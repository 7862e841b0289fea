"""The audit data column: JSON written in its canonical text, so the text a row stores
is exactly the data part its hash covers and verification need not parse and re-encode
ten million values (chain.canonical_stored)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Sorted keys, no spaces, UTF-8 as is: the data part of chain.canonical().
encode_data = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


class CanonicalJSON(TypeDecorator[Any]):
    """A JSON column whose stored text is encode_data(value). PostgreSQL's `json` type
    and SQLite keep the text as sent, byte for byte; it reads back as the value (its keys
    in sorted order). Queries index into it as into any JSON column."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> str | None:
            return None if value is None else encode_data(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        def process(value: Any) -> Any:
            return json.loads(value) if isinstance(value, str | bytes) else value

        return process
