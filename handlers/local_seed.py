"""Loads the sample virtual keys (examples/virtual-keys.json) and prompts (examples/prompts/) into a fresh local store."""

from __future__ import annotations

import json
from pathlib import Path

from core.service import PromptService
from core.virtual_keys import VirtualKeyService

VIRTUAL_KEYS_FILE = "virtual-keys.json"  # beside the prompts directory


def load_examples(service: PromptService, directory: Path, virtual_keys: VirtualKeyService | None = None) -> int:
    """Creates each `*.json` example (a create body, plus optional `partials`, `versions`, `publish`, `labels`).

    With `virtual_keys`, first creates the bindings listed in `<directory>/../virtual-keys.json` that
    do not exist yet (by slug), so prompts that name them pass the virtual_key check.
    """
    if virtual_keys is not None:
        load_virtual_keys(virtual_keys, directory.parent / VIRTUAL_KEYS_FILE)
    count = 0
    for path in sorted(directory.glob("*.json")):
        example = json.loads(path.read_text())
        for partial in example.pop("partials", []):
            service.create_partial(partial)
        versions = example.pop("versions", [])
        publish = example.pop("publish", None)
        labels = example.pop("labels", {})
        created = service.create_prompt(example)
        for update in versions:
            service.update_prompt(created["id"], {"patch": True, **update})
        if publish is not None:
            service.publish_prompt(created["id"], {"version": publish})
        for label, version in labels.items():
            service.label_version(created["id"], str(version), {"label_id": label})
        count += 1
    return count


def load_virtual_keys(virtual_keys: VirtualKeyService, path: Path) -> int:
    """Creates each binding in `path` (a JSON list of create bodies) whose slug is not taken; returns how many."""
    if not path.exists():
        return 0
    created = 0
    for body in json.loads(path.read_text()):
        if body.get("slug") and virtual_keys.exists(body["slug"]):
            continue
        virtual_keys.create(body)
        created += 1
    return created
