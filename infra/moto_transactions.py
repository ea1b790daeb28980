"""Makes moto's TransactWriteItems roll back item by item instead of deep-copying whole tables.

moto snapshots every table a transaction touches with `copy.deepcopy`, so each write costs O(table):
a few hundred versions already slow `cuecard serve` to a few writes per second. After `install()`,
moto's table copy is skipped and the touched items alone are saved and restored on failure, which
keeps the all-or-nothing behaviour. Not thread-safe, like moto itself: callers serialise writes.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

_INSTALLED_MARK = "_cuecard_item_rollback"


def install() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    if getattr(models.DynamoDBBackend.transact_write_items, _INSTALLED_MARK, False):
        return
    if getattr(models, "copy", None) is copy:
        models.copy = _SkipTableCopies(Table)  # type: ignore[attr-defined]
    original = models.DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved = _save_touched_items(self, transact_items)
        try:
            return original(self, transact_items)
        except BaseException:
            _restore(saved)
            raise

    setattr(transact_write_items, _INSTALLED_MARK, True)
    models.DynamoDBBackend.transact_write_items = transact_write_items


class _SkipTableCopies:
    """Stands in for the `copy` module inside moto.dynamodb.models: tables are not copied."""

    def __init__(self, table_class: type) -> None:
        self._table_class = table_class

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, self._table_class) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _save_touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    for entry in transact_items:
        try:
            (operation, request), = entry.items()
            table = backend.tables.get(request.get("TableName"))
            if table is None:
                continue
            attributes = request["Item"] if operation == "Put" else request["Key"]
            hash_value = DynamoType(attributes[table.hash_key_attr])
            range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001 - a malformed entry: moto rejects it before changing anything
            continue
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    for table, hash_value, range_value, item in reversed(saved):
        if item is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item
