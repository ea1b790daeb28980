"""DynamoLabelStore: core.ports.LabelStore on the one table.

A custom label is one item (`label_key`) plus a name guard (`label_name_guard_key`) that keeps names
unique and answers name -> id in one read. The label item lists the prompts that carry it
(`used_by`), so a rename can move their pointers and a delete can refuse while one still does. A
rename first swaps the name (recording the old one in `pending_renames`), then moves each prompt's
`PTR#label#<old>` pointer; an interrupted rename is finished by the label's next update.
"""

from __future__ import annotations

from typing import Any, Callable

from core.actor import actor_or_system
from core.errors import Conflict, InvalidRequest, LabelNotFound
from core.models import BUILTIN_LABELS, Label, builtin_label, builtin_label_name
from core.references import check_label_name
from infra import dynamo_items as items
from infra.aws_errors import translated
from infra.dynamo_items import Item, n, s
from infra.dynamodb_table import CONDITION_FAILED, ONE, DynamoTable, utc_now


def label_id_by_name(table: DynamoTable, name: str) -> str | None:
    """The id of the custom label named `name` (one consistent read of its name guard), or None."""
    guard = table.get(items.label_name_guard_key(name))
    return guard["label_id"]["S"] if guard else None


class DynamoLabelStore:
    def __init__(self, table: DynamoTable, *, now: Callable[[], str] = utc_now) -> None:
        self.table = table
        self._now = now

    @translated("create_label")
    def create_label(self, label: Label) -> Label:
        _check_new_label_name(label.name)
        stored = Label(
            id=label.id,
            name=label.name,
            created_at=label.created_at,
            description=label.description,
            color_code=label.color_code,
            workspace_id=label.workspace_id,
            organisation_id=label.organisation_id,
            updated_at=label.last_updated_at,
        )
        guard = {**items.label_name_guard_key(label.name), "label_id": s(label.id)}
        codes = self.table.transact_or_reasons(
            [
                self.table.put(items.label_item(stored), "attribute_not_exists(pk)"),
                self.table.put(guard, "attribute_not_exists(pk)"),
            ]
        )
        if codes:
            if codes[1] == CONDITION_FAILED:
                raise Conflict(f"a label named {label.name} already exists")
            raise Conflict(f"label {label.id} already exists")
        return stored

    @translated("get_label")
    def get_label(self, id_or_name: str) -> Label:
        builtin = builtin_label_name(id_or_name)
        if builtin is not None:
            return builtin_label(builtin)
        item = self.table.get(items.label_key(id_or_name))
        if item is None:
            label_id = label_id_by_name(self.table, id_or_name)
            item = self.table.get(items.label_key(label_id)) if label_id else None
        if item is None:
            raise LabelNotFound(f"label {id_or_name} not found")
        return items.label_from_item(item)

    @translated("list_labels")
    def list_labels(self) -> list[Label]:
        stored = self.table.query(
            IndexName="by_type",
            KeyConditionExpression="entity_type = :type",
            ExpressionAttributeValues={":type": s(items.LABEL_TYPE)},
        )
        return [builtin_label(name) for name in BUILTIN_LABELS] + [items.label_from_item(item) for item in stored]

    @translated("update_label")
    def update_label(self, label_id: str, *, name: str | None, description: str | None, color_code: str | None) -> Label:
        item = self._custom_label_item(label_id, "changed")
        self._finish_renames(item)
        sets, values = ["last_updated_at = :last_updated_at"], {":last_updated_at": s(self._now())}
        for attribute, value in (("description", description), ("color_code", color_code)):
            if value is not None:
                sets.append(f"{attribute} = :{attribute}")
                values[f":{attribute}"] = s(value)
        old_name = item["name"]["S"]
        if name is not None and name != old_name:
            self._rename_label(label_id, old_name, name, sets, values)
        elif sets:
            update = self.table.update(items.label_key(label_id), "SET " + ", ".join(sets), "attribute_exists(pk)",
                                       values=values)
            self.table.run(update)
        updated = self._custom_label_item(label_id, "changed")
        self._finish_renames(updated)
        return items.label_from_item(updated)

    @translated("delete_label")
    def delete_label(self, label_id: str) -> None:
        for _ in range(10):
            item = self._custom_label_item(label_id, "deleted")
            name = item["name"]["S"]
            names = {name} | items.string_set(item, "pending_renames")
            used_by = items.string_set(item, "used_by")
            in_use = {pk for pk in used_by if self._carries_label(pk, names)}
            stale = used_by - in_use
            if stale:
                forget = self.table.update(items.label_key(label_id), "DELETE used_by :stale",
                                           values={":stale": {"SS": sorted(stale)}})
                self.table.run(forget)
            if in_use:
                raise Conflict(
                    f"label {name} is still assigned to {len(in_use)} prompt(s); it can be deleted once no prompt carries it"
                )
            codes = self.table.transact_or_reasons(
                [
                    self.table.delete(
                        items.label_key(label_id),
                        "attribute_not_exists(used_by) AND #name = :name",
                        names={"#name": "name"},
                        values={":name": s(name)},
                    ),
                    self.table.delete(items.label_name_guard_key(name), "label_id = :id", values={":id": s(label_id)}),
                ]
            )
            if not codes:
                return
        raise Conflict(f"label {label_id} changed while it was being deleted; retry")

    # --- internals ------------------------------------------------------------------------------

    def _custom_label_item(self, label_id: str, verb: str) -> Item:
        if builtin_label_name(label_id) is not None:
            raise InvalidRequest(f"built-in label {label_id} cannot be {verb}")
        item = self.table.get(items.label_key(label_id))
        if item is None:
            raise LabelNotFound(f"label {label_id} not found")
        return item

    def _rename_label(self, label_id: str, old: str, new: str, sets: list[str], values: dict[str, Any]) -> None:
        _check_new_label_name(new)
        codes = self.table.transact_or_reasons(
            [
                self.table.update(
                    items.label_key(label_id),
                    "SET " + ", ".join(["#name = :new", *sets]) + " ADD pending_renames :old_set",
                    "#name = :old",
                    names={"#name": "name"},
                    values={**values, ":new": s(new), ":old": s(old), ":old_set": {"SS": [old]}},
                ),
                self.table.delete(items.label_name_guard_key(old), "label_id = :id", values={":id": s(label_id)}),
                self.table.put(
                    {**items.label_name_guard_key(new), "label_id": s(label_id)}, "attribute_not_exists(pk)"
                ),
            ]
        )
        if codes:
            if codes[2] == CONDITION_FAILED:
                raise Conflict(f"a label named {new} already exists")
            raise Conflict(f"label {label_id} changed while it was being renamed; retry")

    def _finish_renames(self, label: Item) -> None:
        """Moves every prompt's pointer from each pending old name to the current name (idempotent)."""
        current = label["name"]["S"]
        for old in sorted(items.string_set(label, "pending_renames")):
            for pk in sorted(items.string_set(label, "used_by")):
                self._move_label_pointer(pk, old, current)
            done = self.table.update(items.key(label["pk"]["S"], label["sk"]["S"]), "DELETE pending_renames :old",
                                     values={":old": {"SS": [old]}})
            self.table.run(done)

    def _move_label_pointer(self, pk: str, old: str, new: str) -> None:
        actor = actor_or_system()
        for _ in range(20):
            head = self.table.get(items.key(pk, items.HEAD_SK))
            if head is None or items.is_deleted(head):
                return
            labels = head.get("labels", {}).get("M", {})
            if old not in labels:
                return
            keep_newer = new in labels  # labelled under the new name since the rename: that wins
            values = {":one": ONE, ":revision": n(items.revision_of(head)), ":actor": s(actor)}
            if not keep_newer:
                values[":version"] = labels[old]
            transaction = [
                self.table.update(
                    items.key(pk, items.HEAD_SK),
                    ("SET " if keep_newer else "SET labels.#new = :version, ")
                    + "revision = revision + :one, actor = :actor REMOVE labels.#old",
                    "revision = :revision",
                    names={"#old": old} if keep_newer else {"#old": old, "#new": new},
                    values=values,
                ),
                self.table.delete(items.key(pk, items.label_pointer_sk(old))),
            ]
            old_pointer = self.table.get(items.key(pk, items.label_pointer_sk(old)))
            if not keep_newer and old_pointer is not None:
                transaction.append(self.table.put(items.pointer_copy(old_pointer, items.label_pointer_sk(new))))
            if not self.table.transact_or_reasons(transaction):
                return
        raise Conflict(f"too many concurrent writes while moving label {old} to {new}; retry")

    def _carries_label(self, pk: str, names: set[str]) -> bool:
        head = self.table.get(items.key(pk, items.HEAD_SK))
        if head is None or items.is_deleted(head):
            return False
        return bool(names & set(head.get("labels", {}).get("M", {})))


def _check_new_label_name(name: str) -> None:
    check_label_name(name)
    if name in BUILTIN_LABELS:
        raise Conflict(f"a label named {name} already exists (built in)")

