"""The gateway in front of a hostile upstream (the transport's corpus, tests/fakes/hostile.py):
whatever the upstream does, the caller gets, within the timeouts, either the answer or an
error in OpenAI's shape with a 5xx that says the upstream failed (502, or 504 for time) —
never a hang, a 500 or a traceback — a streamed caller never sees a broken stream look
complete, the gateway goes on serving, and every request sent upstream leaves a usage row."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from human.store import open_store
from tests.fakes import hostile
from tests.fakes.openai_server import FakeServer

from .test_keys_limits import HI

TIMEOUTS = {"connect": 2, "first_byte": 1.0, "idle": 1.0, "total": 3}
WHOLE = hostile.completion_body("fine")
SSE = hostile.sse_body("fi", "ne")

# name: (how the upstream answers a whole request, what the caller must get: "ok" or an error status)
WHOLE_CASES: dict[str, tuple[Callable[[FakeServer], Any], str | int]] = {
    "http/1.0 without a length": (lambda f: hostile.framed(f, WHOLE, framing="http10"), "ok"),
    "chunked": (lambda f: hostile.framed(f, WHOLE, framing="chunked"), "ok"),
    "gzip": (lambda f: hostile.encoded(f, WHOLE, "gzip"), "ok"),
    "1xx before the answer": (lambda f: hostile.interim(f, WHOLE), "ok"),
    "status line one byte at a time": (lambda f: hostile.trickle_head(f, WHOLE, interval=0.004), "ok"),
    "bytes after the answer": (lambda f: hostile.with_extra(f, WHOLE, b"HTTP/1.1 200 OK\r\n\r\njunk"), "ok"),
    "closed without an answer": (hostile.close_without_answer, 502),
    "a body that never ends": (lambda f: hostile.endless(f, framing="chunked", interval=0.1), 504),
    "silent after the headers": (lambda f: f.stall_after_headers(5), 504),
    "no headers at all": (lambda f: f.hang(5), 504),
    "closed mid-body": (lambda f: hostile.raw(f, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                                b"Content-Length: 500\r\n\r\n" + WHOLE[:40], then="close"), 502),
    "html instead of json": (lambda f: f.reply(json=None, status=200, headers={"Content-Type": "text/html"},
                                               body=b"<html><body>Sign in to the proxy</body></html>"), 502),
    "json that is not a completion": (lambda f: f.reply(json=[1, 2, 3]), 502),
    "truncated json": (lambda f: hostile.framed(f, WHOLE[:-9], framing="length"), 502),
    "the same length twice": (lambda f: hostile.framed(f, WHOLE, framing="dup-cl"), "ok"),  # RFC 9112 6.3
    "chunked and a length": (lambda f: hostile.framed(f, WHOLE, framing="te+cl"), "ok"),  # chunked wins
}

STREAM_CASES: dict[str, tuple[Callable[[FakeServer], Any], str | int]] = {
    "http/1.0 stream": (lambda f: hostile.framed(f, SSE, framing="http10", content_type="text/event-stream"),
                        "ok"),
    "[DONE] then silence": (lambda f: hostile.done_then(f, SSE, then="hold"), "ok"),
    "[DONE] then more bytes": (lambda f: hostile.done_then(f, SSE, then="more"), "ok"),
    "ends without [DONE] or finish": (lambda f: hostile.framed(f, hostile.sse_body("fi", finish=None, done=False),
                                                               framing="chunked", content_type="text/event-stream"),
                                      "broken"),
    "silent after the first chunk": (lambda f: f.stall_after_headers(5, events=[
        {"choices": [{"index": 0, "delta": {"content": "fi"}}]}]), "broken"),
    "closed without an answer": (hostile.close_without_answer, 502),
    "no headers at all": (lambda f: f.hang(5), 504),
}


def call(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    began = time.monotonic()
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, raw, time.monotonic() - began
    finally:
        conn.close()


def check_error(status: int, headers: dict[str, str], raw: bytes, expected: int) -> None:
    assert status == expected, (status, raw[:300])
    assert headers["content-type"].startswith("application/json")
    error = json.loads(raw)["error"]
    assert error["message"] and "Traceback" not in error["message"]


@pytest.fixture
def hostile_gateway(gateway: Any, config: dict[str, Any]) -> Any:
    config["timeouts"] = TIMEOUTS
    config["routes"] = {"models": ["fake/fake-model"], "aliases": {"fast": "fake/fake-model"}}  # no fallback
    return gateway()


def rows(config: dict[str, Any]) -> int:
    store = open_store(Path(config["gateway"]["log_path"]))
    try:
        found = store.usage(None, [])
        return found[0].exchanges if found else 0
    finally:
        store.close()


@pytest.mark.parametrize("name", list(WHOLE_CASES))
def test_a_hostile_upstream_gives_the_caller_the_answer_or_a_clear_5xx(
        name: str, hostile_gateway: Any, fake: FakeServer, config: dict[str, Any]) -> None:
    script, expected = WHOLE_CASES[name]
    script(fake)
    status, headers, raw, took = call(hostile_gateway.url, {"model": "fast", "messages": HI})
    assert took < TIMEOUTS["total"] + 2
    if expected == "ok":
        assert status == 200, raw[:300]
        assert json.loads(raw)["choices"][0]["message"]["content"] == "fine"
    else:
        check_error(status, headers, raw, int(expected))
    fake.reset()
    fake.completion("after", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}).as_default()
    status, _, raw, _ = call(hostile_gateway.url, {"model": "fast", "messages": HI})
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "after"
    hostile_gateway.close()
    assert rows(config) == 2  # the hostile one too: it was sent upstream


@pytest.mark.parametrize("name", list(STREAM_CASES))
def test_a_hostile_upstream_never_makes_a_broken_stream_look_complete(
        name: str, hostile_gateway: Any, fake: FakeServer, config: dict[str, Any]) -> None:
    script, expected = STREAM_CASES[name]
    script(fake)
    status, headers, raw, took = call(hostile_gateway.url, {"model": "fast", "messages": HI, "stream": True})
    assert took < TIMEOUTS["total"] + 2
    if expected in ("ok", "broken"):
        assert status == 200 and headers["content-type"].startswith("text/event-stream"), raw[:300]
        events = [e for e in raw.split(b"\n\n") if e]
        text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or ""
                       for e in events if e.startswith(b"data: {\"choices\"") or b'"delta"' in e)
        if expected == "ok":
            assert events[-1] == b"data: [DONE]" and text == "fine", raw[:500]
        else:
            assert b"data: [DONE]" not in events and text.startswith("fi")
            assert b'"error"' in events[-1]  # the caller's SDK raises: the answer is not whole
    else:
        check_error(status, headers, raw, int(expected))
    fake.reset()
    fake.completion("after").as_default()
    status, _, _, _ = call(hostile_gateway.url, {"model": "fast", "messages": HI})
    assert status == 200
    hostile_gateway.close()
    assert rows(config) == 2
