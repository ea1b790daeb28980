"""A chat-completions stream as the Responses API streams: `ResponseEvents` takes the provider's chunks one at a
time and answers the events they stand for, each with the next `sequence_number`.

The sequence OpenAI's SDK accumulates (openai/lib/streaming/responses): `response.created` first, then
`response.in_progress`; each output item added before its content or arguments; `output_text` (or `refusal`)
deltas, `function_call_arguments` deltas; their done events and `output_item.done`; and last
`response.completed`, `response.incomplete` (the provider stopped at its token limit) or `response.failed` (the
call failed after the stream began). Every lifecycle event carries the same response id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from core.errors import CuecardError
from core.responses import (
    INCOMPLETE_REASONS,
    failed,
    finished,
    function_call_item,
    mapping,
    message_item,
    refusal_part,
    text_part,
)

logger = logging.getLogger("cuecard.responses")
_PART_EVENTS = {"output_text": ("response.output_text.delta", "response.output_text.done", "text"),
                "refusal": ("response.refusal.delta", "response.refusal.done", "refusal")}


@dataclass
class _Message:
    item_id: str
    output_index: int
    parts: list[dict[str, Any]] = field(default_factory=list)
    part_open: bool = False
    done: bool = False
    status: str = "in_progress"

    def item(self, status: str) -> dict[str, Any]:
        return message_item(self.item_id, [dict(part) for part in self.parts], status)


@dataclass
class _Call:
    item_id: str
    output_index: int
    call_id: str
    name: str
    arguments: str = ""
    done: bool = False
    status: str = "in_progress"

    def item(self, status: str) -> dict[str, Any]:
        return function_call_item(self.item_id, self.call_id, self.name, self.arguments, status)


class ResponseEvents:
    """The events of one streamed Response. `response` is the Response before the call (core.responses.skeleton)."""

    def __init__(self, response: Mapping[str, Any], *, new_id: Callable[[str], str], now: Callable[[], float]) -> None:
        self._response = dict(response)
        self._new_id = new_id
        self._now = now
        self._sequence = 0
        self._items: list[_Message | _Call] = []
        self._message: _Message | None = None  # the message item text goes to
        self._calls: dict[int, _Call] = {}  # by the chat tool call's index
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._model: Any = None
        self.chunks = 0

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        return [self._event("response.created", response=dict(self._response)),
                self._event("response.in_progress", response=dict(self._response))]

    def feed(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.chunks += 1
        if chunk.get("usage") is not None:
            self._usage = chunk["usage"]
        if chunk.get("model"):
            self._model = chunk["model"]
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = mapping(choice.get("delta"))
            for kind, key in (("output_text", "content"), ("refusal", "refusal")):
                if isinstance(delta.get(key), str) and delta[key]:
                    events.extend(self._text(kind, delta[key]))
            calls = list(delta.get("tool_calls") or [])
            if isinstance(delta.get("function_call"), Mapping):  # the legacy `functions`
                calls.append({"index": 0, "function": delta["function_call"]})
            for call in calls:
                if isinstance(call, Mapping):
                    events.extend(self._call(call))
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def _text(self, kind: str, delta: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        message = self._message
        if message is None or message.done:
            message = self._message = _Message(self._new_id("msg"), len(self._items))
            self._items.append(message)
            events.append(self._event("response.output_item.added", output_index=message.output_index,
                                      item=message.item("in_progress")))
        if message.part_open and message.parts[-1]["type"] != kind:
            events.extend(self._close_part(message))
        if not message.part_open:
            message.parts.append(text_part("") if kind == "output_text" else refusal_part(""))
            message.part_open = True
            events.append(self._event("response.content_part.added", item_id=message.item_id,
                                      output_index=message.output_index, content_index=len(message.parts) - 1,
                                      part=dict(message.parts[-1])))
        delta_event, _, key = _PART_EVENTS[kind]
        message.parts[-1][key] += delta
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        events.append(self._event(delta_event, item_id=message.item_id, output_index=message.output_index,
                                  content_index=len(message.parts) - 1, delta=delta, **extra))
        return events

    def _close_part(self, message: _Message) -> list[dict[str, Any]]:
        part = message.parts[-1]
        _, done_event, key = _PART_EVENTS[part["type"]]
        extra: dict[str, Any] = {"logprobs": []} if part["type"] == "output_text" else {}
        where = {"item_id": message.item_id, "output_index": message.output_index,
                 "content_index": len(message.parts) - 1}
        message.part_open = False
        return [self._event(done_event, **where, **{key: part[key]}, **extra),
                self._event("response.content_part.done", **where, part=dict(part))]

    def _close_message(self, message: _Message, status: str) -> list[dict[str, Any]]:
        if message.done:
            return []
        events = self._close_part(message) if message.part_open else []
        message.done, message.status = True, status
        events.append(self._event("response.output_item.done", output_index=message.output_index,
                                  item=message.item(status)))
        return events

    def _call(self, delta: Mapping[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = delta.get("index", 0)
        function = mapping(delta.get("function"))
        call = self._calls.get(index)
        if call is None:
            if self._message is not None:
                events.extend(self._close_message(self._message, "completed"))
            call = _Call(self._new_id("fc"), len(self._items), str(delta.get("id") or self._new_id("call")),
                         str(function.get("name") or ""))
            self._calls[index] = call
            self._items.append(call)
            events.append(self._event("response.output_item.added", output_index=call.output_index,
                                      item=call.item("in_progress")))
        elif function.get("name") and not call.name:
            call.name = str(function["name"])
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            call.arguments += fragment
            events.append(self._event("response.function_call_arguments.delta", item_id=call.item_id,
                                      output_index=call.output_index, delta=fragment))
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The done events of every open item, then `response.completed` (or `response.incomplete`)."""
        status = "incomplete" if self._finish_reason in INCOMPLETE_REASONS else "completed"
        events: list[dict[str, Any]] = []
        for item in self._items:
            if isinstance(item, _Message):
                events.extend(self._close_message(item, status))
            elif not item.done:
                item.done, item.status = True, "completed"
                events.append(self._event("response.function_call_arguments.done", item_id=item.item_id,
                                          output_index=item.output_index, arguments=item.arguments))
                events.append(self._event("response.output_item.done", output_index=item.output_index,
                                          item=item.item("completed")))
        final = finished(self._response, self._output(status), self._finish_reason, self._usage, self._model,
                         self._now())
        events.append(self._event(f"response.{final['status']}", response=final))
        return events

    def fail(self, message: str, *, status: int) -> list[dict[str, Any]]:
        """`response.failed`: the call failed after the stream began; the output so far is incomplete."""
        return [self._event("response.failed", response=failed(self._response, self._output("incomplete"), message,
                                                                 status=status, now=self._now()))]

    def _output(self, status: str) -> list[dict[str, Any]]:
        """Each item as it ended, or with `status` if it is still open."""
        return [item.item(item.status if item.done else status) for item in self._items]


async def response_events(events: ResponseEvents, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Every event of the stream, from `response.created` to the terminal one; a failure ends it `response.failed`."""
    for event in events.start():
        yield event
    try:
        async for chunk in chunks:
            for event in events.feed(chunk):
                yield event
    except CuecardError as exc:
        for event in events.fail(exc.message, status=exc.status):
            yield event
        return
    except Exception:  # noqa: BLE001 - the client must see an end, not a hang
        logger.exception("response stream failed")
        for event in events.fail("The stream failed on the server.", status=500):
            yield event
        return
    if not events.chunks:
        for event in events.fail("The provider ended the stream without a chunk.", status=502):
            yield event
        return
    for event in events.finish():
        yield event
