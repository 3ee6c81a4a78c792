"""Replays every recorded server deviation in tests/data/corpus through the pure core.

Streams (`.sse`) go through SSEDecoder + StreamAssembler, cut into chunks of several
sizes; bodies (`.json`, `.html`) through decode_body + parse_completion. Each result is
checked against expected.json, and every file must have an expectation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from human import errors
from human.core.parse import decode_body, parse_completion
from human.core.sse import SSEDecoder
from human.core.stream import StreamAssembler
from human.types import ChatResponse, ContentDelta, ReasoningDelta, ToolCallDone

CORPUS = Path(__file__).parent.parent / "data" / "corpus"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())
FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".sse", ".json", ".html") and p.name != "expected.json")
STREAMS = [name for name in FILES if name.endswith(".sse")]
CHUNK_SIZES = [1, 2, 3, 7, 64, 1 << 20]


def replay_stream(raw: bytes, size: int) -> tuple[ChatResponse, list[Any]]:
    """As the clients' pump does: an `error` event fails, `[DONE]` stops, and a body that
    ends before a finish_reason or [DONE] is an error (core/stream.py, end rules)."""
    decoder, assembler = SSEDecoder(), StreamAssembler(provider="corpus", model="requested")
    events: list[Any] = []

    def take(sses: list[Any]) -> None:
        for sse in sses:
            if assembler.done:
                return
            if sse.event == "error":
                raise assembler.error_event(sse.data)
            events.extend(assembler.add(sse.data))

    for start in range(0, len(raw), size):
        take(decoder.feed(raw[start : start + size]))
    take(decoder.close())
    events += assembler.close()
    error = assembler.end_error()
    if error is not None:
        raise error
    return assembler.finish(), events


def replay_body(name: str, raw: bytes) -> ChatResponse:
    content_type = "text/html; charset=utf-8" if name.endswith(".html") else "application/json"
    body = decode_body(raw, content_type, provider="corpus", model="requested", status=200)
    return parse_completion(body, provider="corpus", model="requested")


def summary(response: ChatResponse) -> dict[str, Any]:
    usage = response.to_dict()["usage"]
    return {
        "content": response.content,
        "reasoning": response.reasoning,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls],
        "finish_reason": response.finish_reason,
        "usage": usage,
        "id": response.id,
        "model": response.model,
    }


def check(name: str, run: Any) -> None:
    expected = EXPECTED[name]
    if "error" in expected:
        with pytest.raises(errors.HumanError) as caught:
            run()
        error = caught.value
        assert type(error).__name__ == expected["error"]
        if "status" in expected:
            assert error.status == expected["status"]
        if "retryable" in expected:
            assert error.retryable is expected["retryable"]
        if "message_contains" in expected:
            assert expected["message_contains"] in str(error)
        if "partial_content" in expected:
            assert error.partial is not None and error.partial.content == expected["partial_content"]
        return
    got = summary(run())
    for key, value in expected.items():
        assert got[key] == value, f"{name}: {key}"


def test_every_corpus_file_has_an_expectation() -> None:
    missing = sorted(set(FILES) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(FILES))
    assert not missing, f"corpus files without an entry in expected.json: {missing}"
    assert not stale, f"expected.json names files that do not exist: {stale}"


def test_every_corpus_file_is_listed_in_the_readme() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert [name for name in FILES if f"`{name}`" not in readme] == []


def test_every_success_expectation_names_the_five_fields() -> None:
    for name, expected in EXPECTED.items():
        if "error" not in expected:
            assert {"content", "reasoning", "tool_calls", "finish_reason", "usage"} <= set(expected), name


def test_crlf_file_really_has_crlf_line_ends() -> None:
    assert b"\r\n" in (CORPUS / "crlf.sse").read_bytes()


@pytest.mark.parametrize("size", CHUNK_SIZES)
@pytest.mark.parametrize("name", STREAMS)
def test_stream_matches_expectation(name: str, size: int) -> None:
    raw = (CORPUS / name).read_bytes()
    check(name, lambda: replay_stream(raw, size)[0])


@pytest.mark.parametrize("name", [n for n in STREAMS if "error" not in EXPECTED.get(n, {"error": 1})])
def test_stream_events_add_up_to_the_response(name: str) -> None:
    response, events = replay_stream((CORPUS / name).read_bytes(), 5)
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert content == (response.content or "")
    assert reasoning == (response.reasoning or "")
    assert [e.tool_call for e in events if isinstance(e, ToolCallDone)] == list(response.tool_calls)


@pytest.mark.parametrize("name", [n for n in FILES if not n.endswith(".sse")])
def test_body_matches_expectation(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    check(name, lambda: replay_body(name, raw))
