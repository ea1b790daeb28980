"""A real botocore EventStream for a stubbed `converse_stream`, built from AWS event-stream frames.

`Stubber` validates its canned responses against the output shape, which rejects a list (or any
iterator) as `stream`. So the test stubs `converse_stream` with `{}` and an `after-call` hook puts a
botocore `EventStream` over encoded frames in its place: botocore's own parser then reads the
events, error events included (they raise `EventStreamError`, as they do against AWS).
"""

from __future__ import annotations

import binascii
import json
import struct
from typing import Any, Iterable, Iterator, Mapping

from botocore.eventstream import EventStream


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def frame(headers: Mapping[str, str], payload: Mapping[str, Any]) -> bytes:
    """One event-stream message: prelude, prelude CRC, headers, payload, message CRC."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    body = json.dumps(payload).encode()
    prelude = struct.pack("!II", 12 + len(raw_headers) + len(body) + 4, len(raw_headers))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + raw_headers + body
    return message + struct.pack("!I", binascii.crc32(message))


def event(kind: str, payload: Mapping[str, Any]) -> bytes:
    return frame({":message-type": "event", ":event-type": kind, ":content-type": "application/json"}, payload)


def exception(kind: str, message: str) -> bytes:
    return frame({":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"},
                 {"message": message})


class RawBody:
    """What botocore reads an event stream from: `.stream()` chunks and `.close()`."""

    def __init__(self, frames: Iterable[bytes], *, split: int = 7) -> None:
        self._data = b"".join(frames)
        self._split = split  # small network chunks: frames arrive cut anywhere
        self.closed = False

    def stream(self) -> Iterator[bytes]:
        for start in range(0, len(self._data), self._split):
            if self.closed:
                return
            yield self._data[start:start + self._split]

    def close(self) -> None:
        self.closed = True


def install(client: Any, bodies: list[RawBody]) -> None:
    """Each stubbed `converse_stream` answer gets the next body's EventStream as its `stream`."""
    operation = client.meta.service_model.operation_model("ConverseStream")
    stream_shape = operation.output_shape.members["stream"]
    parser = client._response_parser._event_stream_parser  # noqa: SLF001 - the parser botocore itself uses
    pending = list(bodies)

    def inject(parsed: dict[str, Any], **_: Any) -> None:
        if "Error" in parsed:  # a stubbed client error: botocore raises it next
            return
        parsed["stream"] = EventStream(pending.pop(0), stream_shape, parser, "ConverseStream")

    client.meta.events.register("after-call.bedrock-runtime.ConverseStream", inject)


class StallingBody(RawBody):
    """Sends its frames, then stalls (like a model that stopped talking) until closed."""

    def __init__(self, frames: Iterable[bytes]) -> None:
        super().__init__(frames, split=1 << 20)
        import threading

        self._closed = threading.Event()

    def stream(self) -> Iterator[bytes]:
        yield from super().stream()
        self._closed.wait(10)

    def close(self) -> None:
        super().close()
        self._closed.set()
