"""A provider's chunk keeps its JSON text so the SSE frame passes it on with `provider` spliced in, and is encoded
again whenever that would not give the same chunk."""

from __future__ import annotations

import copy
import json

from core.providers import JsonChunk
from handlers.sse import data_frame


def chunk(text: str) -> JsonChunk:
    return JsonChunk(json.loads(text), text)


def frame_json(frame: bytes) -> object:
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n") and b"\n" not in frame[:-2]
    return json.loads(frame[6:])


def test_provider_is_spliced_into_the_upstream_text() -> None:
    text = '{"id":"c1","choices":[{"delta":{"content":"h\\u00e9"}}]}'
    got = chunk(text)
    got["provider"] = "openai"
    assert data_frame(got) == b"data: " + text[:-1].encode() + b',"provider":"openai"}\n\n'
    assert frame_json(data_frame(got)) == {**json.loads(text), "provider": "openai"} == dict(got)


def test_anything_else_is_encoded_as_before() -> None:
    def encoded(value: dict) -> bytes:
        return b"data: " + json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    cases = [chunk('{"a":1}\n'), chunk('{"a":\n1}'), chunk("{}"), chunk('{"provider":"x","a":1}')]
    for case in cases:
        case["provider"] = "openai"
        assert data_frame(case) == encoded(dict(case))
    changed = chunk('{"a":1}')
    changed["provider"] = "openai"
    changed["b"] = 2
    assert data_frame(changed) == encoded({"a": 1, "provider": "openai", "b": 2})
    for mutate in (lambda c: c.pop("a"), lambda c: c.update(a=3), lambda c: c.setdefault("z", 1),
                   lambda c: c.__delitem__("a"), lambda c: c.__ior__({"a": 4})):
        other = chunk('{"a":1,"y":2}')
        mutate(other)
        assert data_frame(other) == encoded(dict(other))
    assert data_frame({"a": "é"}) == encoded({"a": "é"})
    assert data_frame(copy.deepcopy(chunk('{"a":1}'))) == encoded({"a": 1})
