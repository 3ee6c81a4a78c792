"""The gateway's stream relay (core/relay.py): what it forwards and what it learns must not
depend on how the upstream's bytes were split into reads."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from human.core.relay import Relay, error_event, sse_from_whole

BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m-1"}
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def event(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def chunk(content: str | None = None, finish: str | None = None, role: bool = False, **extra: Any) -> bytes:
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
    if content is not None:
        delta["content"] = content
    return event({**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


STREAM = (chunk(role=True, usage=None) + chunk("Hel", usage=None) + chunk("lo", usage=None)
          + chunk(finish="stop", usage=None) + event({**BASE, "choices": [], "usage": USAGE}) + event(b"[DONE]"))


def relay_all(pieces: list[bytes], strip: bool) -> tuple[bytes, Relay]:
    relay = Relay(strip_usage=strip)
    out = b"".join(relay.feed(piece) for piece in pieces) + relay.end()
    return out, relay


@pytest.mark.parametrize("strip", [True, False])
def test_every_split_gives_the_same_output_and_findings(strip: bool) -> None:
    whole, reference = relay_all([STREAM], strip)
    assert reference.done and reference.finished and reference.complete and reference.usage == USAGE
    assert reference.model == "m-1"
    for cut in range(1, len(STREAM)):
        out, relay = relay_all([STREAM[:cut], STREAM[cut:]], strip)
        assert out == whole, cut
        assert (relay.done, relay.usage, relay.model) == (True, USAGE, "m-1")
    byte_by_byte, _ = relay_all([STREAM[i:i + 1] for i in range(len(STREAM))], strip)
    assert byte_by_byte == whole


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12, unique=True))
def test_any_number_of_splits(cuts: list[int]) -> None:
    edges = [0, *sorted(cuts), len(STREAM)]
    out, relay = relay_all([STREAM[a:b] for a, b in zip(edges, edges[1:])], True)
    assert out == relay_all([STREAM], True)[0] and relay.usage == USAGE


def test_the_usage_only_chunk_is_cut_only_when_the_caller_did_not_ask() -> None:
    stripped, _ = relay_all([STREAM], True)
    kept, _ = relay_all([STREAM], False)
    assert b'"usage": {' not in stripped and b'"usage": {' in kept
    assert kept == STREAM and stripped.endswith(b"data: [DONE]\n\n")


def test_nothing_is_released_before_the_first_output() -> None:
    relay = Relay(strip_usage=True)
    assert relay.feed(chunk(role=True)) == b"" and not relay.committed
    assert relay.feed(b": keep-alive comment\n\n") == b""
    out = relay.feed(chunk("first"))
    assert relay.committed and out.startswith(b"data: ") and out.count(b"data: ") == 2  # role chunk released too


def test_an_error_event_before_output_is_not_output() -> None:
    relay = Relay(strip_usage=True)
    assert relay.feed(chunk(role=True) + event({"error": {"message": "overloaded"}})) == b""
    assert relay.error == {"message": "overloaded"} and not relay.output
    named = Relay(strip_usage=True)
    named.feed(b"event: error\ndata: boom\n\n")
    assert named.error == "boom" and not named.output


def test_an_error_after_output_is_forwarded_and_the_stream_is_not_complete() -> None:
    out, relay = relay_all([chunk("partial") + event({"error": {"message": "lost"}})], True)
    assert b"lost" in out and relay.output and relay.error is not None and not relay.complete


def test_a_stream_cut_short_is_not_complete_and_a_finish_without_done_is() -> None:
    _, cut = relay_all([chunk(role=True) + chunk("half")], True)
    assert cut.committed and not cut.complete
    _, finished = relay_all([chunk("all") + chunk(finish="stop")], True)
    assert finished.complete and not finished.done


def test_nothing_after_done_is_forwarded() -> None:
    out, relay = relay_all([chunk("a", finish="stop") + event(b"[DONE]") + chunk("late")], True)
    assert out.endswith(b"data: [DONE]\n\n") and b"late" not in out
    assert relay.feed(chunk("later")) == b""


def test_crlf_events_and_a_last_event_without_its_blank_line() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    out, relay = relay_all([crlf[:50], crlf[50:]], True)
    assert relay.done and relay.usage == USAGE and b"\r" not in out
    out, relay = relay_all([chunk("x") + chunk(finish="stop").rstrip(b"\n")], True)
    assert relay.complete and out.endswith(b"\n\n")  # completed, so a caller's parser dispatches it


def test_a_server_that_never_ends_an_event_is_not_held_without_bound() -> None:
    relay = Relay(strip_usage=True)
    relay.committed = True
    relay.model = "m"
    assert relay.feed(b"data: " + b"x" * (1 << 19)) != b""


def test_usage_in_every_chunk_keeps_the_last() -> None:
    stream = (chunk("a", usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6})
              + chunk("b", finish="stop", usage=USAGE) + event(b"[DONE]"))
    out, relay = relay_all([stream], True)
    assert relay.usage == USAGE and out == stream  # usage on content chunks is not cut


def test_error_event_and_whole_answer_shapes() -> None:
    body = json.loads(error_event("it broke", code="stream_interrupted")[6:])
    assert body == {"error": {"message": "it broke", "type": "upstream_error", "param": None,
                              "code": "stream_interrupted"}}
    whole = {"id": "x", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi",
                                                                          "tool_calls": None},
                                                   "finish_reason": "stop"}], "usage": USAGE}
    out, relay = relay_all([sse_from_whole(whole, include_usage=True)], False)
    assert relay.done and relay.usage == USAGE and b'"content": "hi"' in out


def test_errors_after_the_start_are_found_in_any_block_and_the_word_in_text_is_not_one() -> None:
    for late in (event({"error": {"message": "lost"}}), b"event: error\ndata: lost\n\n"):
        relay = Relay(strip_usage=True)
        relay.feed(chunk(role=True) + chunk("a"))  # committed, model known: the unread path from here
        out = relay.feed(chunk("b") + late)
        out += relay.end()
        assert b"lost" in out and relay.error is not None and not relay.complete, late
    text, relay = relay_all([chunk(role=True), chunk("an error in the text"), chunk(finish="stop"),
                             event(b"[DONE]")], True)
    assert relay.error is None and relay.complete and b"an error in the text" in text


def test_a_finish_in_a_block_never_read_is_found_when_the_body_ends() -> None:
    relay = Relay(strip_usage=True)
    relay.feed(chunk(role=True) + chunk("a"))
    relay.feed(chunk("b") + chunk(finish="length") + chunk("trailing, after the finish"))
    assert not relay.done
    relay.end()
    assert relay.finished and relay.complete


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) * 2 - 1), max_size=20, unique=True))
def test_crlf_streams_split_anywhere_give_the_same_output(cuts: list[int]) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    edges = [0, *sorted(cut for cut in cuts if cut < len(crlf)), len(crlf)]
    out, relay = relay_all([crlf[a:b] for a, b in zip(edges, edges[1:])], True)
    assert out == relay_all([crlf], True)[0] and relay.done and relay.usage == USAGE


def test_a_long_event_a_byte_at_a_time_is_forwarded_whole() -> None:
    """(The carried bytes are searched and joined once, so this is linear: 100 KB a byte at
    a time took 10.6 s when every read searched the whole carry.)"""
    long = chunk("x" * 60_000)
    pieces = [long[i:i + 1] for i in range(len(long))] + [chunk(finish="stop"), event(b"[DONE]")]
    relay = Relay(strip_usage=True)
    relay.committed, relay.model = True, "m-1"
    out = b"".join(relay.feed(piece) for piece in pieces) + relay.end()
    assert out == long + chunk(finish="stop") + event(b"[DONE]") and relay.complete
