"""The SSE decoder: WHATWG "Interpreting an event stream", fed in arbitrary pieces."""

from __future__ import annotations

from pathlib import Path

import pytest

from human.core.sse import SSEDecoder, SSEEvent
from human.errors import BadResponseError, ResponseTooLargeError

CORPUS = Path(__file__).parent.parent / "data" / "corpus"


def decode(*chunks: bytes, **kw: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kw)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def datas(*chunks: bytes) -> list[str]:
    return [event.data for event in decode(*chunks)]


# ---- the usual event ----------------------------------------------------------------


def test_single_data_event_is_dispatched_at_the_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\n') == [SSEEvent('{"a": 1}')]


def test_event_is_not_dispatched_before_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("x")]


def test_several_events_in_one_chunk_come_out_in_order() -> None:
    assert datas(b"data: 1\n\ndata: 2\n\ndata: 3\n\n") == ["1", "2", "3"]


def test_done_marker_is_passed_through_as_data() -> None:
    assert datas(b"data: [DONE]\n\n") == ["[DONE]"]


def test_missing_space_after_colon_is_accepted() -> None:
    assert datas(b"data:x\n\n") == ["x"]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert datas(b"data:  x\n\n") == [" x"]


def test_colon_inside_the_value_is_kept() -> None:
    assert datas(b'data: {"url": "http://h:1"}\n\n') == ['{"url": "http://h:1"}']


def test_empty_data_line_dispatches_an_empty_event() -> None:
    assert datas(b"data:\n\n") == [""]
    assert datas(b"data\n\n") == [""]


# ---- line ends ------------------------------------------------------------------------


def test_crlf_line_ends() -> None:
    assert datas(b"data: a\r\n\r\ndata: b\r\n\r\n") == ["a", "b"]


def test_cr_only_line_ends() -> None:
    assert datas(b"data: a\r\rdata: b\r\r") == ["a", "b"]


def test_mixed_line_ends() -> None:
    assert datas(b"data: a\r\n\ndata: b\n\r\ndata: c\r\r\n") == ["a", "b", "c"]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r") == [SSEEvent("a\nb")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []


def test_cr_at_the_end_of_a_chunk_then_data_is_a_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [SSEEvent("a")]


# ---- fields ---------------------------------------------------------------------------


def test_comment_lines_are_ignored() -> None:
    assert datas(b": keep-alive\n\n: OPENROUTER PROCESSING\ndata: x\n: inside\n\n") == ["x"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert datas(b"data: first\ndata: second\ndata:\n\n") == ["first\nsecond\n"]


def test_event_field_sets_the_type_and_resets_after_dispatch() -> None:
    events = decode(b"event: error\ndata: boom\n\ndata: next\n\n")
    assert [(e.event, e.data) for e in events] == [("error", "boom"), ("message", "next")]


def test_empty_event_field_means_message() -> None:
    assert decode(b"event:\ndata: x\n\n")[0].event == "message"


def test_id_field_is_reported_and_kept_for_later_events() -> None:
    events = decode(b"id: 7\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n")
    assert [e.id for e in events] == ["7", "7", ""]


def test_id_containing_nul_is_ignored() -> None:
    assert decode(b"id: a\0b\ndata: x\n\n")[0].id is None


def test_unknown_fields_and_retry_are_ignored() -> None:
    assert datas(b"retry: 1000\nfoo: bar\nDATA: upper\ndata: x\n\n") == ["x"]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\nid: 1\n\n") == []


def test_blank_lines_alone_produce_nothing() -> None:
    assert decode(b"\n\n\n\r\n\r\r") == []


# ---- end of stream --------------------------------------------------------------------


def test_event_without_final_blank_line_is_dispatched_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: tail") == [SSEEvent("a")]
    assert decoder.close() == [SSEEvent("tail")]


def test_event_with_one_line_end_but_no_blank_line_is_dispatched_at_close() -> None:
    assert datas(b"data: tail\n") == ["tail"]
    assert datas(b"data: tail\r") == ["tail"]


def test_close_without_pending_event_returns_nothing() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.close() == []


def test_close_of_a_comment_only_tail_returns_nothing() -> None:
    assert decode(b"data: a\n\n: trailing comment") == [SSEEvent("a")]


# ---- bytes and text -------------------------------------------------------------------


def test_multibyte_utf8_split_across_feeds_is_decoded_whole() -> None:
    raw = 'data: {"t": "héllo → 世界 🎉"}\n\n'.encode()
    for cut in range(len(raw) + 1):
        assert datas(raw[:cut], raw[cut:]) == ['{"t": "héllo → 世界 🎉"}']


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert datas(b"data: a\xff\xfeb\xe2\x82\n\n") == ["a\ufffd\ufffdb\ufffd"]


def test_leading_bom_is_skipped() -> None:
    assert datas(b"\xef\xbb\xbfdata: x\n\n") == ["x"]


def test_leading_bom_split_across_feeds_is_skipped() -> None:
    assert datas(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_bom_later_in_the_stream_is_kept() -> None:
    assert datas(b"data: \xef\xbb\xbfx\n\n") == ["\ufeffx"]


def test_partial_bom_at_end_of_stream_does_not_raise() -> None:
    assert datas(b"\xef\xbb") == []


def test_empty_feeds_are_harmless() -> None:
    assert datas(b"", b"data: x", b"", b"\n", b"", b"\n", b"") == ["x"]


# ---- any split gives the same events ----------------------------------------------------


@pytest.mark.parametrize("name", ["openai-tools-stream.sse", "crlf.sse", "no-done.sse", "qwen-think-tags.sse"])
def test_every_two_way_split_of_a_recorded_stream_gives_identical_events(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    whole = decode(raw)
    assert whole
    for cut in range(len(raw) + 1):
        assert decode(raw[:cut], raw[cut:]) == whole, cut


@pytest.mark.parametrize("name", ["openai-tools-stream.sse", "crlf.sse"])
def test_byte_by_byte_feeding_gives_identical_events(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == decode(raw)


def test_general_and_fast_paths_agree() -> None:
    fast = decode(b'data: {"x": 1}\n\ndata: y\n\n')
    general = decode(b'data: {"x": 1}\r\n\r\n: c\ndata: y\n\n')
    assert fast == general


# ---- size cap -------------------------------------------------------------------------


def test_event_growing_past_the_cap_raises_too_large() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    decoder.feed(b"data: " + b"x" * 500)
    with pytest.raises(ResponseTooLargeError) as caught:
        decoder.feed(b"x" * 600)
    assert "1000 bytes" in str(caught.value)
    assert isinstance(caught.value, BadResponseError)
    assert not caught.value.retryable


def test_many_lines_of_one_event_past_the_cap_raise_too_large() -> None:
    decoder = SSEDecoder(max_event_bytes=100_000)
    with pytest.raises(ResponseTooLargeError):
        for _ in range(200):
            decoder.feed(b"data: " + b"y" * 1000 + b"\n")


def test_many_small_events_never_hit_the_cap() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    events = []
    for _ in range(1000):
        events += decoder.feed(b"data: " + b"z" * 50 + b"\n\n")
    assert len(events) == 1000


def test_large_event_spread_over_many_feeds_is_reassembled() -> None:
    lines = [b"data: " + str(i).encode() * 300 + b"\n" for i in range(400)]
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for line in lines:
        events += decoder.feed(line)
    assert events == []
    events += decoder.feed(b"\n")
    assert len(events) == 1
    assert events[0].data == "\n".join(str(i) * 300 for i in range(400))


def test_large_event_then_blank_line_at_the_start_of_the_next_feed_dispatches() -> None:
    big = b"event: big\ndata: " + b"q" * 70_000 + b"\n"
    decoder = SSEDecoder()
    assert decoder.feed(big) == []
    assert decoder.feed(b"\ndata: small\n\n") == [SSEEvent("q" * 70_000, "big"), SSEEvent("small")]
