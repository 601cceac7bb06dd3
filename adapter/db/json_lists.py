"""A list of values bound as ONE parameter on SQLite: `JsonList`, read back as rows by
SQLite's ``json_each``.

PostgreSQL binds a list as an array (``ARRAY``, ``unnest``, ``= ANY``); SQLite has no arrays,
so a statement over many rows at once (the outbox's claims and delivered results of a round,
`adapter.callbacks.lease`) takes them as a JSON array and reads it with ``json_each``. Each item
goes through its column type's own bind processing first (a `UTCDateTime` becomes the text
SQLite stores for it), so what the statement writes is what a statement per row would have.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Dialect, String, TypeDecorator, func
from sqlalchemy.types import TypeEngine

__all__ = ["JsonList", "json_items"]


class JsonList(TypeDecorator[Sequence[Any]]):
    """A list bound as one JSON text, each item bound as `item` would be."""

    impl = String
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def process_bind_param(self, value: Sequence[Any] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        bind = self.item.dialect_impl(dialect).bind_processor(dialect)
        return json.dumps([bind(v) for v in value] if bind is not None else list(value))


def json_items(param: Any, name: str) -> Any:
    """The rows of the JSON array bound as `param` (``json_each``: its ``key``, the index,
    and its ``value``), as the FROM item `name`."""
    return func.json_each(param).table_valued("key", "value").alias(name)
