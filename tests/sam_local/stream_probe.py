"""Runs inside the streaming function's container, where the Lambda Web Adapter would be (stdlib only).

    python3 stream_probe.py PORT API_KEY

Waits for run.sh's uvicorn to answer /health on 127.0.0.1:PORT (what the adapter's readiness check
does), creates the `stream-check` prompt on the slow mock binding, asks for its completion with
`"stream": true`, and prints one JSON line: the statuses, the stream's headers, and each piece of the
body as it arrived (seconds since the request, text). The host checks it (tests/sam_local/run.py).
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from typing import Any

PROMPT = {
    "name": "Stream check",
    "slug": "stream-check",
    "collection_id": "default",
    "model": "mock-1",
    "virtual_key": "mock-slow",
    "string": json.dumps([{"role": "system", "content": "Answer {{who}}."},
                          {"role": "user", "content": "{{question}}"}]),
    "parameters": {"max_tokens": 100},
}
VARIABLES = {"who": "briefly", "question": "does this answer reach the client one word at a time"}


def main(port: int, key: str) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                break
        except OSError:
            pass
        if time.monotonic() - started > 60:
            return {"error": "uvicorn never answered /health"}
        time.sleep(0.1)
    ready = time.monotonic() - started
    headers = {"content-type": "application/json", "x-portkey-api-key": key}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/v1/prompts", body=json.dumps(PROMPT), headers=headers)
    created = connection.getresponse()
    created_body = created.read().decode()
    connection.request("POST", f"/v1/prompts/{PROMPT['slug']}/completions",
                       body=json.dumps({"stream": True, "variables": VARIABLES}), headers=headers)
    asked = time.monotonic()
    response = connection.getresponse()
    pieces = []
    while True:
        piece = response.read1(65536)  # at most one chunk of the chunked body
        if not piece:
            break
        pieces.append([round(time.monotonic() - asked, 4), piece.decode()])
    return {"ready_after": round(ready, 3), "create_status": created.status, "create_body": created_body,
            "status": response.status, "headers": {k.lower(): v for k, v in response.getheaders()},
            "pieces": pieces, "question": VARIABLES["question"]}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
