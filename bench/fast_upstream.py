"""A cheap OpenAI-shaped upstream for client benchmarks: raw asyncio (uvloop when present), HTTP/1.1 keep-alive.

Any POST is a chat completion: a fixed JSON answer (Content-Length), or, when the body asks for
`"stream": true`, an SSE stream (chunked): a role chunk and `tok0` at once, then `--tokens` tokens
`--token-delay-ms` apart, a finish chunk and `data: [DONE]`. About 30 µs of CPU a request, so the
client under test, not the upstream, is what a benchmark sees. Binds 127.0.0.1 only.

    python bench/fast_upstream.py --port 18090 [--tokens 16] [--token-delay-ms 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_STREAM = re.compile(rb'"stream"\s*:\s*true')

ANSWER = json.dumps({
    "id": "chatcmpl-fast", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-gpt",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! A fixed reply from the fast upstream."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
}, separators=(",", ":")).encode()
JSON_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER))
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(obj: dict) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def frames(tokens: int) -> list[bytes]:
    base = {"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "fake-gpt"}
    out = [_chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]})]
    out += [_chunk({**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]})
            for i in range(tokens)]
    out.append(_chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    done = b"data: [DONE]\n\n"
    out.append(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
    return out


class Upstream(asyncio.Protocol):
    def __init__(self, frames: list[bytes], delay: float) -> None:
        self.frames = frames
        self.delay = delay
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy is not None:
            self.busy.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy is None:
            self._serve()

    def _serve(self) -> None:
        assert self.transport is not None
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = _LENGTH.search(self.buffer, 0, end + 2)
            size = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + size:
                return
            body = bytes(self.buffer[end + 4:end + 4 + size])
            del self.buffer[:end + 4 + size]
            if _STREAM.search(body):
                self.busy = asyncio.get_running_loop().create_task(self._stream())
                return
            self.transport.write(JSON_HEAD + ANSWER)

    async def _stream(self) -> None:
        assert self.transport is not None
        self.transport.write(SSE_HEAD + self.frames[0] + self.frames[1])
        for frame in self.frames[2:]:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.transport.write(frame)
        self.busy = None
        self._serve()


async def serve(port: int, tokens: int, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    made = frames(tokens)
    server = await loop.create_server(lambda: Upstream(made, delay_ms / 1000), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--token-delay-ms", type=float, default=1.0)
    args = parser.parse_args()
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(args.port, args.tokens, args.token_delay_ms))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
