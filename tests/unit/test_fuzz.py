"""Whatever a server sends, the pure core answers with a result or a HumanError, never
another exception; and the pure modules stay free of I/O imports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from human.core.parse import decode_body, parse_completion
from human.core.sse import SSEDecoder
from human.core.stream import StreamAssembler
from human.errors import HumanError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values shaped loosely like chunks, so the fuzzer reaches deep into the assembler.
_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=8)
_KEYS = [
    "id",
    "model",
    "choices",
    "index",
    "delta",
    "message",
    "content",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "usage",
    "prompt_tokens",
    "finish_reason",
    "error",
    "reasoning_content",
    "reasoning",
    "type",
    "text",
    "thinking",
    "prompt_tokens_details",
    "cached_tokens",
    "x_groq",
    "code",
    "message",
]
_json_like = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5),
    max_leaves=25,
)


def _pump(chunks: list[bytes]) -> None:
    decoder, assembler = SSEDecoder(max_event_bytes=4096), StreamAssembler()
    try:
        for chunk in chunks:
            for event in decoder.feed(chunk):
                assembler.add(event.data)
        for event in decoder.close():
            assembler.add(event.data)
        assembler.close()
    except HumanError:
        pass
    assembler.finish()
    assembler.partial()


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_arbitrary_bytes_into_the_stream_pipeline_never_raise_anything_else(chunks: list[bytes]) -> None:
    _pump(chunks)


@FUZZ
@given(st.lists(_json_like, max_size=8), st.integers(1, 50))
def test_arbitrary_json_events_into_the_stream_pipeline_never_raise_anything_else(values: list[Any], size: int) -> None:
    raw = b"".join(b"data: " + json.dumps(v).encode() + b"\n\n" for v in values)
    _pump([raw[i : i + size] for i in range(0, len(raw), size)])


def _body(raw: bytes, content_type: str | None) -> None:
    try:
        parse_completion(decode_body(raw, content_type))
    except HumanError:
        pass


@FUZZ
@given(st.binary(max_size=256), st.sampled_from([None, "application/json", "text/html", ""]))
def test_arbitrary_bytes_into_body_parsing_never_raise_anything_else(raw: bytes, content_type: str | None) -> None:
    _body(raw, content_type)


@FUZZ
@given(_json_like)
def test_arbitrary_json_bodies_never_raise_anything_else(value: Any) -> None:
    _body(json.dumps(value).encode(), "application/json")


def test_pure_modules_import_no_io_modules() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import human.core.sse, human.core.stream, human.core.parse, human.core.shapes\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    # urllib.parse arrives with mimetypes (types.py): string handling only, so allowed.
    forbidden = {"http", "asyncio", "aiohttp", "socket", "time", "ssl", "selectors", "threading", "urllib.request"}
    pure = {"human", "human._version", "human.core", "human.core.sse", "human.core.stream", "human.core.parse",
            "human.core.shapes", "human.errors", "human.types"}
    bad = [
        name
        for name in loaded
        if name in forbidden or name.split(".")[0] in forbidden or (name.startswith("human") and name not in pure)
    ]
    assert bad == [], f"the pure core pulled in: {bad}"


_line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@FUZZ
@given(
    st.lists(st.tuples(st.text(max_size=20), st.sampled_from(["", "event: x", ": c", "id: 1"])), max_size=6),
    _line_ends,
    st.lists(st.integers(0, 400), max_size=6),
)
def test_any_split_of_a_generated_stream_gives_the_same_events(
    events: list[tuple[str, str]], eol: str, cuts: list[int]
) -> None:
    text = ""
    for data, extra in events:
        if extra:
            text += extra + eol
        text += "".join(f"data: {line}{eol}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        text += eol
    raw = text.encode()
    whole = SSEDecoder()
    expected = whole.feed(raw) + whole.close()
    assert [e.data for e in expected] == [d.replace("\r\n", "\n").replace("\r", "\n") for d, _ in events]
    pieces, last = [], 0
    for cut in sorted(c % (len(raw) + 1) for c in cuts):
        pieces.append(raw[last:cut])
        last = cut
    pieces.append(raw[last:])
    split = SSEDecoder()
    got = [event for piece in pieces for event in split.feed(piece)] + split.close()
    assert got == expected
