"""events/dynamodb-stream-changes.json, captured from real writes.

`capture(settings)` drives the HTTP app (so the actor is an API key) against moto's DynamoDB
and reads the table's stream (tests/stream_capture.py). It keeps one record per role below, the
records a change-events consumer cares about, plus a pointer item that must be ignored. The sample
file is such a capture; tests/handlers/test_change_events_handler.py checks it still has the shape
the store writes. Regenerate it after changing the item layout:

    .venv/bin/python -m tests.handlers.stream_sample
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from core.auth import mint_key
from core.models import Scope
from core.service import utc_now
from infra.settings import Settings
from tests.stream_capture import StreamTap

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "dynamodb-stream-changes.json"
KEY_NAME = "ci-deployer"
# The sample's template text; no event may ever carry it.
TEMPLATE_V1 = json.dumps([{"role": "system", "content": "You are a support agent for {{product}}. Be {{tone}}."},
                          {"role": "user", "content": "{{question}}"}])
TEMPLATE_V2 = json.dumps([{"role": "system", "content": "You are a concise support agent for {{product}}."},
                          {"role": "user", "content": "{{question}}"}])
ROLES = ("version-created", "published", "published-pointer", "label-moved", "deleted")


def role_of(record: dict[str, Any]) -> str | None:
    """What a stream record is, for picking and comparing records (None: not one the sample keeps)."""
    stream = record["dynamodb"]
    sk = stream["Keys"]["sk"]["S"]
    name = record["eventName"]
    if sk.startswith("V#") and name == "INSERT":
        return "version-created"
    if sk == "PTR#published" and name == "MODIFY":
        return "published-pointer"
    if sk != "HEAD" or name != "MODIFY":
        return None
    old, new = stream["OldImage"], stream["NewImage"]
    if new.get("deleted") == {"BOOL": True}:
        return "deleted"
    if old.get("published_version") != new.get("published_version"):
        return "published"
    if old.get("labels") != new.get("labels"):
        return "label-moved"
    return None


def capture(settings: Settings) -> dict[str, Any]:
    """Real writes through the HTTP app; the Lambda event of the records the sample keeps, in stream order."""
    from fastapi.testclient import TestClient

    from handlers.container import build_container

    container = build_container(settings)
    minted = mint_key(KEY_NAME, frozenset({Scope.WRITE}), utc_now())
    container.stores.api_keys.put_key(minted.record)
    client = TestClient(container.asgi_app())
    headers = {"x-portkey-api-key": minted.key}

    def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = client.request(method, f"/v1{path}", headers=headers, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    prompt = call("POST", "/prompts", {"name": "Support reply", "slug": "support-reply", "string": TEMPLATE_V1,
                                       "parameters": {"temperature": 0.3}, "model": "gpt-4o-mini"})
    call("PUT", f"/prompts/{prompt['id']}/versions/1", {"label_id": "production"})
    legacy = call("POST", "/prompts", {"name": "Legacy greeting", "slug": "legacy-greeting",
                                       "string": "Hello {{name}}", "parameters": {}})
    tap = StreamTap(settings.table_name)
    call("PUT", f"/prompts/{prompt['id']}", {"string": TEMPLATE_V2, "parameters": {"temperature": 0.2},
                                             "model": "gpt-4o-mini"})
    call("PUT", f"/prompts/{prompt['id']}/makeDefault", {"version": 2})
    call("PUT", f"/prompts/{prompt['id']}/versions/2", {"label_id": "production"})
    call("DELETE", f"/prompts/{legacy['id']}")
    picked: dict[str, dict[str, Any]] = {}
    for record in tap.records():
        role = role_of(record)
        if role is not None and role not in picked:
            picked[role] = record
    assert set(picked) == set(ROLES), sorted(picked)
    records = sorted(picked.values(), key=lambda record: int(record["dynamodb"]["SequenceNumber"]))
    return {"Records": records}


def main() -> None:
    from infra.table_definition import ensure_table
    from tests.moto_server import MotoServer

    server = MotoServer().start()
    try:
        table = f"cuecard-sample-{uuid.uuid4().hex[:8]}"
        settings = Settings(table_name=table, dynamodb_endpoint=server.endpoint_url)
        ensure_table(settings)
        event = capture(settings)
    finally:
        server.stop()
    for record in event["Records"]:  # as a deployed stack's stream would name itself
        record["eventSourceARN"] = record["eventSourceARN"].replace(f"table/{table}/", "table/cuecard-prompts/")
    SAMPLE.write_text(json.dumps(event, indent=2) + "\n")
    print(f"wrote {SAMPLE.relative_to(ROOT)} ({len(event['Records'])} records)", file=sys.stderr)


if __name__ == "__main__":
    main()
