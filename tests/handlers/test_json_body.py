"""The strict JSON body reader (handlers/json_body.py) and the edge's URL and body limits (handlers/asgi_edge.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import CuecardError, InvalidRequest
from handlers.asgi_edge import MAX_URL_BYTES, EdgeMiddleware, json_errors_http_protocol
from handlers.json_body import (
    MAX_INTEGER_DIGITS,
    MAX_JSON_DEPTH,
    MAX_TEXT_PARAM_CHARS,
    check_request_text,
    check_text,
    parse_json_body,
    read_json_body,
)

ERROR_KEYS = {"message", "type", "param", "code"}
LIMIT = 4096


def refused(raw: bytes | str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(raw)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    assert "retry" not in caught.value.message.lower()
    return caught.value


# --- parse_json_body ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, param", [
    ('{"a": NaN}', "a"),
    ('{"a": [1, {"b": Infinity}]}', "a[1].b"),
    ('{"a": -Infinity}', "a"),
    ("NaN", None),
    ('{"t": 1e400}', "t"),
    ('{"t": -1e400}', "t"),
    ('{"n": ' + "9" * (MAX_INTEGER_DIGITS + 1) + "}", "n"),
    ('{"n": -' + "9" * (MAX_INTEGER_DIGITS + 1) + "}", "n"),
    ('{"n": ' + "9" * 5000 + "}", "n"),
])
def test_non_finite_and_oversized_numbers_are_400_naming_where(raw, param) -> None:
    error = refused(raw)
    assert error.code == "number_out_of_range" and error.param == param


def test_numbers_within_the_bounds_parse_exactly() -> None:
    big = int("9" * MAX_INTEGER_DIGITS)
    assert parse_json_body(json.dumps({"n": big, "m": -big, "f": 1.5e308, "z": 1e-400})) == {
        "n": big, "m": -big, "f": 1.5e308, "z": 0.0}


@pytest.mark.parametrize("raw", [
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    '{"a":' * 1000 + "1" + "}" * 1000,
    "[" * 100_000,  # unbalanced too: refused on depth before any parser recursion
    '{"v": ' + "[" * 990 + "]" * 990 + "}",
    '[{"a": ' * 40 + "1" + "}]" * 40,  # brackets and braces in turn
    '{"a": "\\\\", "b": ' + "[" * 64 + "]" * 64 + "}",  # after a string ending in an escaped backslash
])
def test_nesting_past_the_bound_is_400_without_recursion(raw) -> None:
    assert refused(raw).code == "json_too_deep"


def test_nesting_at_the_bound_and_brackets_inside_strings_are_fine() -> None:
    deep = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json_body(deep) is not None
    brackets = json.dumps({"s": "[" * 5000 + '\\"{' * 100, "t": ["]" * 10], "u": "\\" + "{" * 100})
    assert parse_json_body(brackets)["s"].startswith("[[[")


@pytest.mark.parametrize("raw, param", [
    ('{"variables": {"name": "\\ud800"}}', "variables.name"),
    ('{"variables": {"name": "ok \\udfff"}}', "variables.name"),
    ('{"messages": [{"role": "user", "content": "\\udc00x"}]}', "messages[0].content"),
    ('{"variables": {"\\ud800": 1}}', "variables"),
    ('{"\\ud800": 1}', None),
    ('"\\ud800"', None),
    ('{"a": {"b\\ud800": {"c": "\\udc01"}}}', "a"),  # the key is refused first, at its object's path
    ('{"x": "\\ude00\\ud83d"}', "x"),  # a pair in the wrong order is two lone surrogates
])
def test_lone_surrogates_are_400_with_the_json_path(raw, param) -> None:
    error = refused(raw)
    assert error.code == "invalid_unicode" and error.param == param
    json.dumps(error.to_body(), ensure_ascii=False).encode("utf-8")  # the answer itself is valid UTF-8


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    assert parse_json_body('{"e": "\\ud83d\\ude00", "s": "\\\\ud800"}') == {"e": "\U0001F600", "s": "\\ud800"}


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b'{"a": "\xed\xa0\x80"}', b'{"a": "\xc3"}', b"\xef\xbb\xbf{}"])
def test_undecodable_utf8_and_a_bom_are_invalid_json(raw) -> None:
    assert refused(raw).code == "invalid_json"


def test_parse_errors_give_the_position_and_quote_nothing() -> None:
    secret = "sk-live-0123456789abcdef"
    error = refused('{"key": "' + secret + '", oops}')
    assert error.code == "invalid_json" and secret not in error.message and "line 1" in error.message


def test_empty_body_is_the_default_or_a_400() -> None:
    assert parse_json_body(b"  \n", default={}) == {}
    assert refused(b"").code == "invalid_request"


# --- check_text ------------------------------------------------------------------------------------------


def test_check_text_refuses_lone_surrogates_and_long_values() -> None:
    assert check_text("greeting@production", param="prompt_id") == "greeting@production"
    with pytest.raises(InvalidRequest) as caught:
        check_text("a\ud800", param="prompt_id")
    assert (caught.value.code, caught.value.param) == ("invalid_unicode", "prompt_id")
    with pytest.raises(InvalidRequest) as caught:
        check_text("9" * (MAX_TEXT_PARAM_CHARS + 1), param="version_id")
    assert (caught.value.code, caught.value.param) == ("value_too_long", "version_id")


# --- the reader in a tiny app, as http_app will use it -----------------------------------------------------


async def echo(request: Request) -> Response:
    check_request_text(request)
    body = await read_json_body(request, LIMIT, default={})
    return JSONResponse({"body": body, "query": dict(request.query_params)})


async def domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CuecardError)
    return JSONResponse(exc.to_body(), exc.status)


def tiny_app(*, edge: bool = True) -> Any:
    app = Starlette(routes=[Route("/echo/{item}", echo, methods=["POST"])],
                    exception_handlers={CuecardError: domain_error})
    return EdgeMiddleware(app, max_body_bytes=LIMIT) if edge else app


@pytest.fixture(params=["edge", "no-edge"])
def client(request) -> TestClient:
    return TestClient(tiny_app(edge=request.param == "edge"), raise_server_exceptions=False)


def assert_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS and error["type"] == "invalid_request_error"
    assert "retry" not in error["message"].lower() and "Traceback" not in response.text
    if code:
        assert error["code"] == code
    if param:
        assert error["param"] == param
    return error


@pytest.mark.parametrize("body, code, param", [
    (b'{"variables": {"x": NaN}}', "number_out_of_range", "variables.x"),
    (b'{"n": ' + b"1" * 4000 + b"}", "number_out_of_range", "n"),
    (b"[" * 1000 + b"]" * 1000, "json_too_deep", None),
    (b'{"variables": {"x": "\\ud800"}}', "invalid_unicode", "variables.x"),
    (b"\xff", "invalid_json", None),
])
def test_the_reader_answers_each_bad_body_with_its_code(client, body, code, param) -> None:
    response = client.post("/echo/a", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, code, param)


def test_the_reader_stops_a_chunked_body_at_the_limit(client) -> None:
    def chunks():
        for _ in range(1000):
            yield b"x" * 1024

    assert_error(client.post("/echo/a", content=chunks()), 413, "request_too_large")


@pytest.mark.parametrize("edge", [True, False])
def test_the_reader_stops_reading_an_endless_body_at_the_limit(edge) -> None:
    answers = asyncio.run(call(tiny_app(edge=edge), "POST", "/echo/a", body=None))
    assert answers["status"] == 413 and json.loads(answers["body"])["error"]["code"] == "request_too_large"
    assert answers["chunks_read"] <= LIMIT // 1024 + 1


def test_the_reader_passes_a_good_body_and_checks_path_and_query(client) -> None:
    assert client.post("/echo/a?q=1", json={"v": [1, 2.5, "\U0001F600"]}).json() == {
        "body": {"v": [1, 2.5, "\U0001F600"]}, "query": {"q": "1"}}
    assert_error(client.post("/echo/" + "9" * 5000, json={}), 400, "value_too_long", "item")
    assert_error(client.post("/echo/a?version=" + "9" * 5000, json={}), 400, "value_too_long", "version")


# --- the edge ------------------------------------------------------------------------------------------------


@pytest.fixture
def edge() -> TestClient:
    return TestClient(tiny_app(), raise_server_exceptions=False)


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1.5", b"0x10", b"+5", b"1_0", b"\xc2\xb2", b""])
def test_a_malformed_content_length_is_a_json_400(value) -> None:
    answers = asyncio.run(call(tiny_app(), "POST", "/echo/a", headers=[(b"content-length", value)], body=b"{}"))
    assert answers["status"] == 400
    assert json.loads(answers["body"])["error"]["code"] == "invalid_content_length"


def test_two_different_content_lengths_are_a_400_and_a_huge_one_is_413() -> None:
    two = asyncio.run(call(tiny_app(), "POST", "/echo/a", headers=[(b"content-length", b"2"), (b"content-length", b"3")],
                           body=b"{}"))
    assert two["status"] == 400
    huge = asyncio.run(call(tiny_app(), "POST", "/echo/a", headers=[(b"content-length", b"9" * 5000)], body=b"{}"))
    assert huge["status"] == 413 and (b"connection", b"close") in huge["headers"]


def test_an_over_long_url_is_a_json_414(edge) -> None:
    error = assert_error(edge.post("/echo/" + "a" * MAX_URL_BYTES, json={}), 414, "url_too_long")
    assert str(MAX_URL_BYTES) in error["message"]
    assert_error(edge.post("/echo/a?q=" + "a" * 60_000, json={}), 414, "url_too_long")  # httpx's own limit is 64 KiB


@pytest.mark.parametrize("url", ["/echo/%ff", "/echo/%ed%a0%80", "/echo/a?q=%ff", "/echo/a?%c3=1"])
def test_percent_escapes_that_are_not_utf8_are_a_json_400(edge, url) -> None:
    assert_error(edge.post(url, json={}), 400, "invalid_url")


@pytest.mark.parametrize("path", ["/echo/\ud800", "/prod/v1/echo/\ud800", "/pr\ud800d/v1/echo/a"])
def test_a_path_holding_a_lone_surrogate_is_a_json_400(path) -> None:
    """As Mangum can hand it over: a decoded path from an event, no raw_path; with an API Gateway stage too."""
    answers = asyncio.run(call(tiny_app(), "POST", path, body=b"{}", raw_path=None))
    assert answers["status"] == 400 and json.loads(answers["body"])["error"]["code"] == "invalid_url"


def test_a_stage_prefix_keeps_the_raw_path_as_sent() -> None:
    """`%25ff` is a literal `%ff` in a prompt id, not an undecodable byte."""
    seen = {}

    async def app(scope, receive, send) -> None:
        seen.update(path=scope["path"], raw_path=scope["raw_path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    answers = asyncio.run(call(EdgeMiddleware(app, max_body_bytes=LIMIT), "GET", "/prod/v1/x/%ff",
                               raw_path=b"/prod/v1/x/%25ff"))
    assert answers["status"] == 204 and seen == {"path": "/v1/x/%ff", "raw_path": b"/v1/x/%25ff"}


def test_the_edge_stops_reading_an_endless_chunked_body_at_the_limit() -> None:
    """Nothing behind the edge can read past the limit: here the app buffers the whole body itself."""

    async def greedy(scope, receive, send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    answers = asyncio.run(call(EdgeMiddleware(greedy, max_body_bytes=LIMIT), "POST", "/x", body=None))
    assert answers["status"] == 413 and (b"connection", b"close") in answers["headers"]
    assert json.loads(answers["body"])["error"]["code"] == "request_too_large"
    assert answers["chunks_read"] <= LIMIT // 1024 + 1


async def call(app: Any, method: str, path: str, *, headers: list[tuple[bytes, bytes]] | None = None,
               body: bytes | None = b"", raw_path: bytes | None | str = "same") -> dict[str, Any]:
    """Calls an ASGI app directly. `body=None` sends 1 KiB chunks without end."""
    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "headers": headers or [],
             "raw_path": path.encode("utf-8", "surrogatepass") if raw_path == "same" else raw_path}
    state: dict[str, Any] = {"chunks_read": 0, "body": b"", "headers": []}

    async def receive() -> dict[str, Any]:
        state["chunks_read"] += 1
        if body is None:
            return {"type": "http.request", "body": b"x" * 1024, "more_body": True}
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            state["status"], state["headers"] = message["status"], message.get("headers", [])
        else:
            state["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return state


# --- behind uvicorn, as `cuecard serve` runs it ------------------------------------------------------------


@pytest.fixture(params=["httptools", "json-errors"])
def served(request):
    """The tiny app behind the edge, in uvicorn on 127.0.0.1 (httptools, as `cuecard serve`), stopped by handle."""
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("httptools")
    http = json_errors_http_protocol() if request.param == "json-errors" else "httptools"
    config = uvicorn.Config(tiny_app(), host="127.0.0.1", port=0, log_level="critical", http=http, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        threading.Event().wait(0.01)
    yield request.param, server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def exchange(port: int, request: bytes) -> tuple[bytes, bytes]:
    """One raw HTTP/1.1 request; the answer's head and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while data := connection.recv(65536):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("request_bytes", [
    b"GET /echo/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
], ids=["100-kb-url", "content-length-abc", "content-length-negative"])
def test_what_uvicorn_refuses_before_the_app_is_a_json_400_with_the_json_errors_protocol(served, request_bytes) -> None:
    """httptools' own answer is plain text, and no setting changes it; the replacement protocol answers JSON."""
    protocol, port = served
    head, body = exchange(port, request_bytes)
    assert head.startswith(b"HTTP/1.1 400"), head
    if protocol == "httptools":
        assert body == b"Invalid HTTP request received."  # what `cuecard serve` answers without the protocol
        return
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)["error"]
    assert set(error) == ERROR_KEYS and error["code"] == "invalid_http_request"


def test_uvicorn_answers_413_to_a_huge_chunked_body_without_reading_it(served) -> None:
    """300 MiB offered in chunks: the answer is a JSON 413 and the connection closes long before the end."""
    connection = socket.create_connection(("127.0.0.1", served[1]), timeout=10)
    connection.sendall(b"POST /echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    sent = 0
    try:
        while sent < 300 * 2**20:
            connection.sendall(chunk)
            sent += 65536
    except OSError:  # the server closed the connection after its answer
        pass
    answer = b""
    try:
        while data := connection.recv(65536):
            answer += data
    except OSError:
        pass
    connection.close()
    assert sent < 64 * 2**20, "the server kept reading"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "request_too_large"
