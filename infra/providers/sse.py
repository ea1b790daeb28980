"""An incremental Server-Sent Events parser over an async byte iterator.

Follows the WHATWG event-stream rules: lines end in `\\r\\n`, `\\n` or `\\r`; a blank line dispatches;
`data:` lines join with `\\n`; `:` lines are comments (keep-alive pings); `id:`/`retry:` are ignored.
Frames and even line endings may be split anywhere across network chunks. One difference: an event
left unterminated at a clean end of stream is still dispatched (some servers omit the last blank line).
"""

from __future__ import annotations

import re
from typing import AsyncIterable, AsyncIterator, NamedTuple

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEEvent(NamedTuple):
    event: str | None  # the `event:` field, None when the frame had none
    data: str


async def parse_sse(source: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    buffer = bytearray()
    event: str | None = None
    data: list[str] = []
    first_line = True

    def feed(line: str) -> SSEEvent | None:
        nonlocal event, data, first_line
        if first_line:
            first_line = False
            line = line.removeprefix(_BOM)
        if not line:
            dispatched = SSEEvent(event, "\n".join(data)) if data else None
            event, data = None, []
            return dispatched
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        return None

    async for chunk in source:
        if not chunk:
            continue
        buffer += chunk
        if b"\r" not in buffer:
            # The common case, `\n` endings only: every complete line at once, decoded in one go (a `\n` is never
            # inside a UTF-8 sequence, so this decodes exactly as line by line would).
            end = buffer.rfind(b"\n")
            if end < 0:
                continue
            lines = buffer[:end].decode("utf-8", errors="replace").split("\n")
            del buffer[:end + 1]
            for line in lines:
                found = feed(line)
                if found is not None:
                    yield found
            continue
        # A trailing `\r` may be the first half of `\r\n`: leave it for the next chunk.
        end = len(buffer) - 1 if buffer.endswith(b"\r") else len(buffer)
        start = 0
        for match in _LINE_END.finditer(buffer, 0, end):
            found = feed(buffer[start:match.start()].decode("utf-8", errors="replace"))
            start = match.end()
            if found is not None:
                yield found
        if start:
            del buffer[:start]

    if buffer:
        for raw in _LINE_END.split(bytes(buffer)):
            if raw:
                feed(raw.decode("utf-8", errors="replace"))
    if data:
        yield SSEEvent(event, "\n".join(data))
