"""Undoes a response's Content-Encoding, piece by piece as the body arrives. Pure.

gzip / x-gzip and deflate with zlib (deflate either zlib-wrapped, as RFC 9110 §8.4.1.2
says, or raw, as many servers send it: the first two bytes tell); br and zstd only when
the `brotli` / `zstandard` module is already installed (never a dependency). Several
codings ("gzip, deflate") are undone in reverse order. `decode(data, limit)` inflates
at most `limit` bytes of output per call, so the parser's size cap stops a bomb early.
"""

from __future__ import annotations

import zlib
from typing import Any

from ..errors import BadResponseError

__all__ = ["ACCEPT_ENCODING", "Decoder", "decoder_for"]


def _optional_decoders() -> tuple[str, ...]:
    found = []
    for name, module in (("br", "brotli"), ("zstd", "zstandard")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    return tuple(found)


# What we can read, advertised so that a server picks one of these or identity.
ACCEPT_ENCODING = ", ".join(("gzip", "deflate", *_optional_decoders()))


class Decoder:
    """Content-Encoding, undone piece by piece; `decode(data, limit)` returns at most
    about `limit` bytes more than needed to tell the cap was passed."""

    __slots__ = ("_steps", "_where")

    def __init__(self, steps: list[Any], where: str) -> None:
        self._steps = steps
        self._where = where

    def decode(self, data: bytes, limit: int) -> bytes:
        try:
            for step in self._steps:
                data = step.decode(data, limit)
        except (zlib.error, OSError, ValueError) as exc:
            raise BadResponseError(f"the compressed body could not be decoded ({exc}) ({self._where})") from None
        return data

    def flush(self) -> bytes:
        data = b""
        try:
            for step in self._steps:
                if data:
                    data = step.decode(data, 1 << 30)
                data += step.flush()
        except (zlib.error, OSError, ValueError) as exc:
            raise BadResponseError(f"the compressed body could not be decoded ({exc}) ({self._where})") from None
        return data


class _Zlib:
    __slots__ = ("_obj", "_deflate", "_head")

    def __init__(self, gzip: bool) -> None:
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        self._deflate = not gzip
        self._head = b""

    def decode(self, data: bytes, limit: int) -> bytes:
        if self._deflate:
            # "deflate" is often sent raw, without the zlib wrapper (RFC 9110 §8.4.1.2 says
            # wrapped; browsers and urllib3 accept both): the first two bytes tell.
            head = self._head + data
            if len(head) < 2:
                self._head = head
                return b""
            self._deflate = False
            self._head = b""
            data = head
            if (head[0] & 0x0F) != 8 or (head[0] * 256 + head[1]) % 31:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        out = self._obj.decompress(data, max(limit, 1))
        if self._obj.unconsumed_tail:
            return out + b"\0"  # stopped at the cap: the caller sees one byte too many and raises
        return out

    def flush(self) -> bytes:
        return self._obj.flush()


class _Module:
    """br or zstd through an installed module (never required)."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def decode(self, data: bytes, limit: int) -> bytes:
        out: bytes = self._obj.process(data) if hasattr(self._obj, "process") else self._obj.decompress(data)
        return out

    def flush(self) -> bytes:
        return b""


def decoder_for(header: str, where: str) -> Decoder | None:
    """The decoder for a Content-Encoding header value, None for identity."""
    steps: list[Any] = []
    # Listed in the order applied; undone in reverse (RFC 9110 §8.4).
    for name in reversed([part.strip().lower() for part in header.split(",") if part.strip()]):
        if name in ("gzip", "x-gzip"):
            steps.append(_Zlib(gzip=True))
        elif name == "deflate":
            steps.append(_Zlib(gzip=False))
        elif name == "identity":
            continue
        elif name == "br" and "br" in ACCEPT_ENCODING:
            import brotli  # type: ignore[import-not-found]

            steps.append(_Module(brotli.Decompressor()))
        elif name == "zstd" and "zstd" in ACCEPT_ENCODING:
            import zstandard  # type: ignore[import-not-found]

            steps.append(_Module(zstandard.ZstdDecompressor().decompressobj()))
        else:
            raise BadResponseError(
                f"the body is compressed with {name!r}, which human cannot decode "
                f"(it asks for {ACCEPT_ENCODING}; a proxy may be rewriting the request) ({where})"
            )
    return Decoder(steps, where) if steps else None
