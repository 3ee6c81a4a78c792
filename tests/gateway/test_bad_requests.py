"""Whatever a caller sends, the gateway answers with OpenAI's error JSON and a status that
says whose fault it is (4xx), never a 500 or a traceback, and goes on serving. Nothing
that fails before upstream is sent upstream, and nothing it refuses leaves a usage row."""

from __future__ import annotations

import http.client
import json
import logging
import socket
from typing import Any

import pytest

from tests.fakes.openai_server import FakeServer

from .test_keys_limits import HI, USAGE

DEEP = 100_000

BAD_BODIES: dict[str, tuple[bytes, int, str | None]] = {
    # name: (body, status, the param the error names)
    "empty": (b"", 400, None),
    "not json": (b"model=fast&messages=hi", 400, None),
    "truncated json": (b'{"model": "fast", "messages": [', 400, None),
    "a json array": (b"[1, 2]", 400, None),
    "a json string": (b'"hello"', 400, None),
    "null": (b"null", 400, None),
    "not utf-8": (b'{"model": "fast", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, None),
    "nested too deep": (b'{"model": "fast", "messages": ' + b"[" * DEEP + b"]" * DEEP + b"}", 400, None),
    "no model": (json.dumps({"messages": HI}).encode(), 400, "model"),
    "model is a number": (json.dumps({"model": 4, "messages": HI}).encode(), 400, "model"),
    "empty model": (json.dumps({"model": "", "messages": HI}).encode(), 400, "model"),
    "unknown model": (json.dumps({"model": "nope", "messages": HI}).encode(), 404, "model"),
    "no messages": (json.dumps({"model": "fast"}).encode(), 400, "messages"),
    "messages is a dict": (json.dumps({"model": "fast", "messages": {"role": "user"}}).encode(), 400, "messages"),
    "empty messages": (json.dumps({"model": "fast", "messages": []}).encode(), 400, "messages"),
    "stream is a string": (json.dumps({"model": "fast", "messages": HI, "stream": "yes"}).encode(), 400, "stream"),
}


def ask(url: str, body: bytes, *, method: str = "POST", path: str = "/v1/chat/completions",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def openai_error(status: int, headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    """The error object of an answer that must be OpenAI's error JSON."""
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, raw[:200])
    error = json.loads(raw)["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and "code" in error
    assert "Traceback" not in error["message"]
    return dict(error)


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_a_bad_request_gets_a_4xx_in_openai_error_shape_and_nothing_goes_upstream(
        name: str, gateway: Any, fake: FakeServer) -> None:
    body, status, param = BAD_BODIES[name]
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    got, headers, raw = ask(gw.url, body)
    assert got == status, (got, raw[:300])
    error = openai_error(got, headers, raw)
    assert error.get("param") == param
    assert "x-human-overhead-ms" in headers
    assert fake.requests == []  # refused before upstream
    good, _, answer = ask(gw.url, json.dumps({"model": "fast", "messages": HI}).encode())
    assert good == 200 and json.loads(answer)["choices"][0]["message"]["content"] == "ok"  # and it goes on


def test_wrong_methods_and_paths_are_refused_in_openai_error_shape(gateway: Any) -> None:
    gw = gateway()
    status, headers, raw = ask(gw.url, b"", method="GET")
    assert status == 405 and openai_error(status, headers, raw)["code"] == "method_not_allowed"
    status, headers, raw = ask(gw.url, b"{}", path="/v1/embeddings")
    assert status == 404
    assert "/v1/embeddings" in openai_error(status, headers, raw)["message"]


def test_a_chunked_body_over_the_limit_is_refused_and_one_under_it_is_served(gateway: Any,
                                                                              fake: FakeServer) -> None:
    """The size cap holds for a body with no Content-Length (chunked), not only for one
    that declares its size."""
    gw = gateway(max_body_bytes=4096)
    fake.completion("ok", usage=USAGE).as_default()
    host, port = gw.url.removeprefix("http://").split(":")

    def chunked(body: bytes) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("POST", "/v1/chat/completions", iter([body[:1000], body[1000:]]),
                         {"Content-Type": "application/json"}, encode_chunked=True)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    big = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x" * 10_000}]}).encode()
    status, raw = chunked(big)
    assert status == 413 and json.loads(raw)["error"]["code"] == "request_too_large"
    small = json.dumps({"model": "fast", "messages": HI}).encode() + b" " * 1500
    status, raw = chunked(small)
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "ok"
    assert len(fake.requests) == 1


def test_garbage_on_the_socket_does_not_stop_the_gateway_nor_fill_its_log(gateway: Any, fake: FakeServer,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    host, port = gw.url.removeprefix("http://").split(":")
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS hello on plain HTTP
                    b"GET / HTTP/9.9\r\n\r\n", b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                    b"\r\n" * 1000, b"A" * 70_000 + b"\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            try:
                while chunk := sock.recv(65536):
                    reply += chunk
            except OSError:  # reset: fine, as long as the gateway serves the next caller
                pass
            assert not reply or reply.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), reply[:200]
    status, _, raw = ask(gw.url, json.dumps({"model": "fast", "messages": HI}).encode())
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "ok"
    # a caller's bad bytes are a debug line each, never an error with a traceback on stderr
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or (r.exc_info and r.levelno > logging.DEBUG)]
    assert loud == [], [r.getMessage() for r in loud]
    assert any("malformed request" in r.getMessage() for r in caplog.records)


def test_refused_requests_leave_no_usage_row(gateway: Any, fake: FakeServer, config: dict[str, Any]) -> None:
    from pathlib import Path

    from human.store import open_store

    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    for body, _, _ in BAD_BODIES.values():
        ask(gw.url, body)
    ask(gw.url, json.dumps({"model": "fast", "messages": HI}).encode())
    gw.close()
    store = open_store(Path(config["gateway"]["log_path"]))
    try:
        assert store.usage(None, [])[0].exchanges == 1
    finally:
        store.close()


def test_odd_authorization_headers_get_a_401_in_openai_error_shape(gateway: Any, fake: FakeServer,
                                                                   keyfile: Any) -> None:
    _, key = keyfile.create("alice")
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    body = json.dumps({"model": "fast", "messages": HI}).encode()
    for value in ("", "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Bearer " + "x" * 7000, "Bearer hgw-",
                  "Bearer hgw-000000000000-", "bearer " + key[:-1], key, "Bearer " + key + " extra"):
        status, headers, raw = ask(gw.url, body, headers={"Authorization": value})
        assert status == 401, (value[:40], status)
        assert openai_error(status, headers, raw)["code"] == "invalid_api_key"
        assert key not in raw.decode()
    status, _, _ = ask(gw.url, body, headers={"Authorization": "Bearer " + key})
    assert status == 200 and len(fake.requests) == 1


def test_a_caller_that_sends_its_body_too_slowly_gets_a_408_and_the_connection_is_closed(
        gateway: Any, fake: FakeServer) -> None:
    import time

    gw = gateway(body_timeout_s=0.5)
    fake.completion("ok", usage=USAGE).as_default()
    host, port = gw.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "fast", "messages": HI}).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10]))
        began = time.monotonic()
        reply = b""
        while chunk := sock.recv(65536):  # read to the end: the gateway closes the connection
            reply += chunk
        waited = time.monotonic() - began
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply[:200]
    assert json.loads(rest)["error"]["code"] == "request_timeout"
    assert 0.4 < waited < 4
    assert fake.requests == []
    status, _, _ = ask(gw.url, body)  # a caller in time is served as ever
    assert status == 200
