"""The pure HTTP/1.1 response parser (core/http1.py): every framing, split at every byte
offset, gives the same body and the same verdict on reuse; malformed answers are typed
errors."""

from __future__ import annotations

import gzip
import zlib

import pytest

from human.core.http1 import HeaderMap, ResponseParser, head_bytes
from human.errors import APIConnectionError, BadResponseError, ConfigError, ResponseTooLargeError

BODY = b'{"choices": [{"message": {"content": "hello, world"}}]}'


def chunked(payload: bytes, size: int = 5) -> bytes:
    out = b""
    for i in range(0, len(payload), size):
        piece = payload[i : i + size]
        out += b"%x;name=value\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n"


# (response bytes, expected body, reusable afterwards, needs eof)
CASES = {
    "length": (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY), BODY, True, False),
    "chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(BODY), BODY, True, False),
    "chunked-lf-only": (b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n" + chunked(BODY).replace(b"\r\n", b"\n"),
                        BODY, True, False),
    "close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY, BODY, False, True),
    "no-length": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + BODY, BODY, False, True),
    "http10": (b"HTTP/1.0 200 OK\r\n\r\n" + BODY, BODY, False, True),
    "http10-keepalive": (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(BODY), BODY), BODY, True, False),
    "http10-length-no-keepalive": (b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY), BODY,
                                   False, False),
    "connection-close-with-length": (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(BODY), BODY), BODY, False, False),
    "te-and-cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(BODY),
                  BODY, False, False),
    "interim-100-103": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY), BODY, True, False),
    "gzip": (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(gzip.compress(BODY))
             + gzip.compress(BODY), BODY, True, False),
    "gzip-chunked": (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunked(gzip.compress(BODY), 3), BODY, True, False),
    "deflate-zlib": (b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
                     % len(zlib.compress(BODY)) + zlib.compress(BODY), BODY, True, False),
    "empty-204": (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True, False),
    "zero-length": (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"", True, False),
    "folded-header": (b"HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
                      BODY, True, False),
}


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


CASES["deflate-raw"] = (b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n"
                        % len(raw_deflate(BODY)) + raw_deflate(BODY), BODY, True, False)


def parse(data: bytes, size: int, eof: bool) -> tuple[ResponseParser, bytes]:
    parser = ResponseParser(where="test")
    out = b""
    for start in range(0, len(data), size):
        out += b"".join(parser.feed(data[start : start + size]))
    if eof:
        assert not parser.done
        out += b"".join(parser.eof())
    return parser, out


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_framing_gives_the_body_at_every_split(name: str) -> None:
    data, body, reusable, eof = CASES[name]
    for size in (1, 2, 3, 7, 64, len(data)):
        parser, out = parse(data, size, eof)
        assert out == body, (name, size)
        assert parser.done
        assert parser.keep_alive is reusable, (name, size)


def test_interim_answers_are_skipped_and_the_final_status_kept() -> None:
    parser, _ = parse(CASES["interim-100-103"][0], 1, False)
    assert parser.status == 200 and parser.headers is not None and "link" not in parser.headers


def test_bytes_after_a_complete_response_forbid_reuse() -> None:
    data = CASES["length"][0] + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"
    parser, out = parse(data, len(data), False)
    assert out == BODY and parser.extra and not parser.keep_alive
    parser = ResponseParser()
    parser.feed(CASES["chunked"][0])
    assert parser.keep_alive
    parser.feed(b"x")  # arriving later, in another read
    assert parser.extra and not parser.keep_alive


def test_headers_are_case_insensitive_and_repeats_joined() -> None:
    headers = HeaderMap([("X-A", "1"), ("x-a", "2"), ("Content-Type", "text/plain")])
    assert headers.get("x-A") == "1, 2" and headers["CONTENT-TYPE"] == "text/plain"
    assert headers.get("missing", "d") == "d" and "content-type" in headers
    assert "1" not in repr(headers)


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    b"HTTP/1.1 200 OK\r\nContent-",
    b"",
])
def test_a_response_cut_short_is_a_connection_error(data: bytes) -> None:
    parser = ResponseParser(where="http://h/x")
    parser.feed(data)
    with pytest.raises(APIConnectionError) as caught:
        parser.eof()
    assert caught.value.retryable


@pytest.mark.parametrize("data, words", [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "HTTP/1.x"),
    (b"\x15\x03\x01\x00\x02\x02\x46", "TLS"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.x"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "hexadecimal"),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: br-unknown\r\nContent-Length: 1\r\n\r\nx", "cannot decode"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnotgz", "decoded"),
])
def test_malformed_answers_are_typed_errors(data: bytes, words: str) -> None:
    with pytest.raises(BadResponseError) as caught:
        parser = ResponseParser(where="http://h/x")
        parser.feed(data)
        parser.eof()
    assert words in str(caught.value)


def test_endless_headers_hit_a_cap() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(BadResponseError):
        for _ in range(2000):
            parser.feed(b"X-Filler: " + b"a" * 60 + b"\r\n")


@pytest.mark.parametrize("name", ["length", "chunked", "gzip", "gzip-chunked", "no-length"])
def test_the_size_cap_applies_to_the_decoded_body(name: str) -> None:
    data, _, _, eof = CASES[name]
    parser = ResponseParser(max_bytes=10)
    with pytest.raises(ResponseTooLargeError):
        parser.feed(data)
        parser.eof()


def test_a_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (50 << 20))
    parser = ResponseParser(max_bytes=1 << 20)
    with pytest.raises(ResponseTooLargeError):
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb) + bomb)


def test_started_says_whether_any_byte_arrived() -> None:
    parser = ResponseParser()
    assert not parser.started
    parser.feed(b"H")
    assert parser.started


def test_request_head_refuses_header_injection_without_showing_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        head_bytes("POST", "/", "h", {"Authorization": "Bearer sk-secret\r\nX-Evil: 1"}, 0)
    assert "sk-secret" not in str(caught.value) and "Authorization" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        head_bytes("POST", "/", "h", {"X-Key": "sk-\u200bsecret"}, 0)
    assert "sk-" not in str(caught.value)
    assert head_bytes("GET", "/m", "h:1", {"A": "b"}, None) == b"GET /m HTTP/1.1\r\nHost: h:1\r\nA: b\r\n\r\n"


def test_a_head_that_comes_a_byte_at_a_time() -> None:
    """Parsed as a whole head is, and what is not HTTP is caught within its first bytes.
    (Each read is searched alone, so this is linear: a 60 KB head took 4 s before.)"""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(500)) + \
        b"Content-Length: 2\r\n\r\nhi"
    parser, out = parse(head, 1, False)
    assert out == b"hi" and parser.done and parser.headers is not None and parser.headers["x-h499"] == "v" * 50
    parser = ResponseParser(where="test")
    with pytest.raises(BadResponseError, match="did not answer in HTTP"):
        for byte in b"SSH-2.0-OpenSSH_9.6\r\n":
            parser.feed(bytes([byte]))
