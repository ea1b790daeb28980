"""Test doubles for jobs: an in-memory `JobLedger`, a recording `EventPublisher` and `JobReplies`, and a
provider that counts its calls. They keep the ports' contracts (core/jobs.py, core/ports.py) and nothing more."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from core.errors import Conflict, CuecardError
from core.jobs import Claim
from core.models import DomainEvent
from core.providers import ProviderCall


class MemoryLedger:
    """`JobLedger` in a dict, with a settable clock. Stores messages as JSON, like the DynamoDB one."""

    def __init__(self, clock: Callable[[], float] = lambda: 1_000.0) -> None:
        self.clock = clock
        self.items: dict[str, dict[str, Any]] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        self.fail_complete: CuecardError | None = None

    def claim(self, job_id: str, fingerprint: str, *, lease_seconds: float) -> Claim:
        with self._lock:
            item = self.items.get(job_id)
            now = self.clock()
            if item and item["state"] == "done":
                return Claim("done", message=json.loads(item["result"]), fingerprint=item["fingerprint"])
            if item and item["lease_until"] >= now:
                return Claim("running", fingerprint=item["fingerprint"])
            token = f"token-{next(self._tokens)}"
            self.items[job_id] = {"state": "running", "token": token, "lease_until": now + lease_seconds,
                                  "fingerprint": fingerprint}
            return Claim("claimed", token=token)

    def complete(self, job_id: str, token: str, message: Mapping[str, Any]) -> None:
        with self._lock:
            if self.fail_complete is not None:
                raise self.fail_complete
            item = self.items.get(job_id)
            if not item or item.get("token") != token:
                raise Conflict(f"lost the claim on {job_id}")
            self.items[job_id] = {"state": "done", "result": json.dumps(message), "fingerprint": item["fingerprint"]}

    def release(self, job_id: str, token: str) -> None:
        with self._lock:
            if self.items.get(job_id, {}).get("token") == token:
                del self.items[job_id]


class RecordingPublisher:
    """`EventPublisher` that keeps what it published; `fail_for(job_id, error)` makes those publishes raise."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.failures: dict[Any, CuecardError] = {}

    def fail_for(self, job_id: Any, error: CuecardError) -> None:
        self.failures[job_id] = error

    def publish(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            error = self.failures.get(event.detail.get("job_id"))
            if error is not None:
                raise error
        self.events.extend(events)

    def details(self, job_id: Any = ...) -> list[dict[str, Any]]:
        return [dict(e.detail) for e in self.events if job_id is ... or e.detail.get("job_id") == job_id]


class RecordingReplies:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: CuecardError | None = None

    def send(self, reply_to: str, message: Mapping[str, Any]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((reply_to, dict(message)))


class CountingProvider:
    """A `ChatProvider` that counts calls and answers like a tiny mock; `fail_next` errors come first."""

    def __init__(self, *, reply: str = "done", content_bytes: int = 0) -> None:
        self.calls: list[ProviderCall] = []
        self.fail_next: list[BaseException] = []
        self.reply = reply
        self.content_bytes = content_bytes

    async def complete(self, call: ProviderCall) -> dict[str, Any]:
        self.calls.append(call)
        if self.fail_next:
            raise self.fail_next.pop(0)
        content = "x" * self.content_bytes if self.content_bytes else self.reply
        return {"id": f"chatcmpl-{len(self.calls)}", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}]}

    async def stream(self, call: ProviderCall) -> AsyncIterator[dict[str, Any]]:  # jobs never stream
        raise AssertionError("a job must never stream")
        yield {}


class OneProvider:
    """`ProviderFactory` answering every name with the same adapter."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter

    def provider(self, name: str) -> Any:
        return self.adapter
