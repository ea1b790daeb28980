"""Loads the sample prompts in examples/prompts/ into a fresh local store."""

from __future__ import annotations

import json
from pathlib import Path

from core.service import PromptService


def load_examples(service: PromptService, directory: Path) -> int:
    """Creates each `*.json` example (a create body, plus optional `partials`, `versions`, `publish`, `labels`)."""
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
