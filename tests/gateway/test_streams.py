"""Streams for real: chunks forwarded as they arrive, fallback only before the first output,
an error event (and no [DONE]) after it, truncated streams never look complete, every
stream metered; and a caller that goes away cancels the upstream request."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import openai
import pytest

from tests.fakes.openai_server import FakeServer

HI = [{"role": "user", "content": "hi"}]
BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake-model"}
ROLE = {**BASE, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def content(text: str, finish: str | None = None) -> dict[str, Any]:
    return {**BASE, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def raw_stream(gw: Any, model: str = "fast", **extra: Any) -> tuple[dict[str, str], list[bytes]]:
    """POST a stream request on a plain socket; (headers, the body's SSE events as sent)."""
    body = json.dumps({"model": model, "messages": HI, "stream": True, **extra}).encode()
    host, port = gw.url.rsplit(":", 1)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    body_bytes = b""
    while rest:  # undo chunked transfer coding
        size, _, rest = rest.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        body_bytes, rest = body_bytes + rest[:length], rest[length + 2:]
    return headers, [event for event in body_bytes.split(b"\n\n") if event]


def test_chunks_are_forwarded_as_they_arrive(gateway: Any, fake: FakeServer) -> None:
    """A paced upstream (a chunk every 300 ms): each chunk reaches the caller long before the
    next one leaves upstream, so nothing is buffered (litellm#26102, dstack#4269)."""
    gw = gateway()
    fake.stream([ROLE, content("one "), content("two "), content("three", "stop")], delay=0.3)
    client = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    arrivals = []
    started = time.monotonic()
    for chunk in client.chat.completions.create(model="fast", messages=HI, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 3
    # "one" is sent at ~0.3 s and "three" at ~0.9 s: forwarded one by one, they arrive
    # ~0.6 s apart; buffered, together.
    assert arrivals[2] - arrivals[0] > 0.4


def test_fallback_before_the_first_output_is_invisible(gateway: Any, fake: FakeServer, config: dict[str, Any]) -> None:
    config["reliability"]["fallback_providers"] = ["backup"]
    gw = gateway()
    fake.reply(status=503, json={"error": {"message": "overloaded"}})  # primary: fails before any byte
    fake.stream([ROLE, content("from backup", "stop")])
    headers, events = raw_stream(gw)
    assert headers["x-human-provider"] == "backup"
    assert b"from backup" in b"".join(events) and events[-1] == b"data: [DONE]"
    assert [r.headers["Authorization"][-6:] for r in fake.requests] == ["abcdef", "543210"]  # each its own key


def test_an_error_event_before_any_output_falls_back(gateway: Any, fake: FakeServer, config: dict[str, Any]) -> None:
    """A role chunk, then an error event: no output reached the caller, so the next target
    answers (maximhq/bifrost#5395: fallback must not stop at the first chunk)."""
    config["reliability"]["fallback_providers"] = ["backup"]
    gw = gateway()
    fake.stream([ROLE, {"error": {"message": "model overloaded", "type": "server_error", "code": "overloaded"}}])
    fake.stream([ROLE, content("second try", "stop")])
    headers, events = raw_stream(gw)
    joined = b"".join(events)
    assert b"second try" in joined and b"overloaded" not in joined
    assert events.count(b"data: " + json.dumps(ROLE).encode()) == 1  # the failed attempt's role chunk is not sent


def test_a_failure_after_the_first_output_ends_with_an_error_event_and_no_done(gateway: Any, fake: FakeServer,
                                                                               config: dict[str, Any]) -> None:
    config["reliability"]["fallback_providers"] = ["backup"]
    gw = gateway()
    fake.stream([ROLE, content("partial "), content("answer")], drop_after=3, drop_with="rst")
    _, events = raw_stream(gw)
    assert b"partial" in b"".join(events)
    last = json.loads(events[-1][len(b"data: "):])
    assert last["error"]["code"] == "stream_interrupted"
    assert b"data: [DONE]" not in events
    assert len(fake.requests) == 1  # no fallback after output: the caller would see two answers

    fake.stream([ROLE, content("partial "), content("answer")], drop_after=3, drop_with="rst")
    client = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    with pytest.raises(openai.APIError, match="broke after the answer began"):
        for _ in client.chat.completions.create(model="fast", messages=HI, stream=True):
            pass


def test_a_stream_that_ends_without_finish_or_done_is_not_complete(gateway: Any, fake: FakeServer) -> None:
    """Portkey-AI/gateway#1797: a cut stream that ends cleanly must not look complete."""
    gw = gateway()
    fake.stream([ROLE, content("cut short")], done=False)
    _, events = raw_stream(gw)
    assert json.loads(events[-1][6:])["error"]["code"] == "stream_interrupted"
    assert b"data: [DONE]" not in events


def test_a_whole_json_answer_to_a_stream_request_is_sent_as_a_stream(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.completion("not streamed", usage=USAGE)
    client = openai.OpenAI(base_url=gw.v1, api_key="x", max_retries=0)
    chunks = list(client.chat.completions.create(model="fast", messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "not streamed"


def test_every_stream_is_metered(gateway: Any, fake: FakeServer, tmp_path: Any) -> None:
    """With usage from upstream (include_usage asked for), its figures; without (a server
    that ignores stream_options, a stream cut off), an estimate, said to be one."""
    import sqlite3

    gw = gateway()
    fake.stream([ROLE, content("metered", "stop"), {**BASE, "choices": [], "usage": USAGE}])
    raw_stream(gw)
    fake.stream([ROLE, content("no usage from this server", "stop")])
    raw_stream(gw)
    fake.stream([ROLE, content("cut")], drop_after=2)
    raw_stream(gw)
    gw.close()
    rows = sqlite3.connect(tmp_path / "logs.db").execute(
        "SELECT prompt_tokens, completion_tokens, cost, cost_note, error_type FROM exchanges ORDER BY id").fetchall()
    assert rows[0][:2] == (9, 3)
    for prompt, completion, cost, note, _ in rows[1:]:
        assert prompt and completion and cost is not None and note.startswith("estimated")
    assert rows[2][4] is not None  # the cut one is an error row, with its partial usage


REJECTED = {"error": {"message": "Unrecognized request argument supplied: stream_options",
                      "type": "invalid_request_error", "param": None, "code": None}}


def test_an_upstream_that_rejects_the_stream_options_the_gateway_added_is_asked_again_without_it(
        gateway: Any, fake: FakeServer, config: dict[str, Any], tmp_path: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    """The gateway adds stream_options to meter every stream; a server that rejects it
    (litellm#23847, Azure's older API versions) must not turn a caller's stream, which never
    asked for it, into a 400. Learnt once: the next streams go without it at once, the
    endpoint's profile says so, and the rows say their usage is an estimate."""
    import sqlite3

    from human.profile import load_profile

    from .harness import UPSTREAM_KEY

    gw = gateway()
    echoed = {"error": {**REJECTED["error"], "message": f"{REJECTED['error']['message']} (key {UPSTREAM_KEY})"}}
    fake.reply(status=400, json=echoed)  # a server that echoes the key: the warning must not
    fake.stream([ROLE, content("hel"), content("lo", "stop")])
    with caplog.at_level(logging.DEBUG):
        _, events = raw_stream(gw)
    assert any("rejects stream_options" in r.getMessage() for r in caplog.records)
    assert not any(UPSTREAM_KEY in r.getMessage() for r in caplog.records)
    assert events[-1] == b"data: [DONE]" and b"hel" in events[1] and b"lo" in events[2]
    assert "stream_options" in fake.requests[0].json and "stream_options" not in fake.requests[1].json
    fake.stream([ROLE, content("again", "stop")])
    _, events = raw_stream(gw)
    assert events[-1] == b"data: [DONE]" and len(fake.requests) == 3
    assert "stream_options" not in fake.requests[2].json  # no second refusal to learn it again
    profile = load_profile("fake", config["providers"][0]["base_url"], "fake-model")
    assert profile is not None and profile.accepts_stream_options is False
    gw.close()
    rows = sqlite3.connect(tmp_path / "logs.db").execute(
        "SELECT completion_tokens, cost_note, error_type FROM exchanges ORDER BY id").fetchall()
    assert len(rows) == 2 and all(row[0] and row[1].startswith("estimated") and row[2] is None for row in rows)


def test_a_caller_who_asked_for_stream_options_gets_the_upstream_400(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.reply(status=400, json=REJECTED)
    body = json.dumps({"model": "fast", "messages": HI, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    port = int(gw.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400") and b"stream_options" in data
    assert len(fake.requests) == 1  # not sent again: the caller's own field


def _hold_then_close(gw: Any, fake: FakeServer, stream: bool) -> float:
    """Send a request the upstream holds, close the caller's socket once the upstream has
    it; seconds from the close to the upstream seeing its connection closed."""
    fake.hold_until_closed(10, events=[ROLE, content("started")] if stream else None)
    body = json.dumps({"model": "fast", "messages": HI, "stream": stream}).encode()
    port = int(gw.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    deadline = time.monotonic() + 10
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.005)
    if stream:  # the stream has begun (the head and the first event may come in separate reads)
        seen = b""
        while b"started" not in seen and time.monotonic() < deadline:
            seen += sock.recv(65536)
        assert b"started" in seen
    time.sleep(0.05)
    closed = time.monotonic()
    sock.close()
    while not fake.closed_at and time.monotonic() < deadline:
        time.sleep(0.002)
    assert fake.closed_at, "the upstream request was never cancelled"
    return fake.closed_at[0] - closed


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_caller_that_disconnects_cancels_the_upstream_request(gateway: Any, fake: FakeServer, stream: bool) -> None:
    """Within 100 ms, streamed or not (litellm#37140: non-streamed requests were never
    cancelled); the abort is immediate, ~1 ms on loopback, so the bound has a wide margin."""
    gw = gateway()
    assert _hold_then_close(gw, fake, stream) < 0.1  # measured ~1 ms here
    deadline = time.monotonic() + 5
    while gw.gateway.metrics.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gw.gateway.metrics.errors["disconnected"] == 1
