"""The incremental SSE parser, whole and split at every byte boundary."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable

import pytest

from infra.providers.sse import SSEEvent, parse_sse

STREAM = (
    ": keep-alive comment\n\n"
    "data: {\"a\": 1}\n\n"
    "event: ping\ndata: {}\n\n"
    "data: first line\ndata: second line\n\n"
    "data:no-space\n\n"
    "id: 7\nretry: 100\ndata: ünïcødé \u2028 ✓\n\n"
    "event: error\ndata: {\"error\": {\"message\": \"boom\"}}\n\n"
    "data\n\n"
    "data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(None, '{"a": 1}'),
    SSEEvent("ping", "{}"),
    SSEEvent(None, "first line\nsecond line"),
    SSEEvent(None, "no-space"),
    SSEEvent(None, "ünïcødé \u2028 ✓"),
    SSEEvent("error", '{"error": {"message": "boom"}}'),
    SSEEvent(None, ""),
    SSEEvent(None, "[DONE]"),
]


async def _source(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def parse(chunks: Iterable[bytes]) -> list[SSEEvent]:
    async def main() -> list[SSEEvent]:
        return [event async for event in parse_sse(_source(chunks))]

    return asyncio.run(main())


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_whole_stream_with_each_line_ending(newline: str) -> None:
    assert parse([STREAM.replace("\n", newline).encode()]) == EXPECTED


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_one_byte_at_a_time(newline: str) -> None:
    data = STREAM.replace("\n", newline).encode()
    assert parse([data[i:i + 1] for i in range(len(data))]) == EXPECTED


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_split_in_two_at_every_byte_boundary(newline: str) -> None:
    data = STREAM.replace("\n", newline).encode()
    for cut in range(len(data) + 1):
        assert parse([data[:cut], b"", data[cut:]]) == EXPECTED, cut


def test_several_frames_in_one_chunk_and_a_frame_across_chunks() -> None:
    assert parse([b'data: 1\n\ndata: 2\n\nda', b'ta: 3\r', b'\n\r', b'\n']) == [
        SSEEvent(None, "1"), SSEEvent(None, "2"), SSEEvent(None, "3")]


def test_comments_and_event_names_without_data_dispatch_nothing() -> None:
    assert parse([b": ping\n\nevent: ping\n\n:\n\n"]) == []


def test_event_name_resets_after_each_dispatch() -> None:
    assert parse([b"event: a\ndata: x\n\ndata: y\n\n"]) == [SSEEvent("a", "x"), SSEEvent(None, "y")]


def test_an_unterminated_last_event_is_dispatched_at_a_clean_end() -> None:
    assert parse([b"data: 1\n\ndata: [DONE]"]) == [SSEEvent(None, "1"), SSEEvent(None, "[DONE]")]
    assert parse([b"data: 1\n\ndata: 2\r"]) == [SSEEvent(None, "1"), SSEEvent(None, "2")]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert parse(["\ufeffdata: 1\n\n".encode()]) == [SSEEvent(None, "1")]


def test_invalid_utf8_is_replaced_alike_with_either_line_ending() -> None:
    """`\\n`-only chunks are decoded a block at a time, others a line at a time: the same text comes out."""
    data = b"data: ok \xff\xfe end\ndata: cut \xe2\x82\n\ndata: \xf0\x9f\x98\x80\n\n"
    expected = [SSEEvent(None, "ok \ufffd\ufffd end\ncut \ufffd"), SSEEvent(None, "\U0001F600")]
    assert parse([data]) == expected
    assert parse([data.replace(b"\n", b"\r\n")]) == expected
    assert parse([data[i:i + 1] for i in range(len(data))]) == expected


def test_line_endings_may_change_between_chunks() -> None:
    assert parse([b"data: 1\n\ndata: 2\r\n", b"\r\ndata: 3\n", b"\n", b"data: 4\r\r"]) == [
        SSEEvent(None, "1"), SSEEvent(None, "2"), SSEEvent(None, "3"), SSEEvent(None, "4")]
