"""The upstream keys never leave the gateway: a canary key is absent from every response
(bodies and headers, errors included), every log line, the metrics, and every stored row,
SQLite and PostgreSQL, even when the upstream echoes it back; and the caller's key never
goes upstream."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from human.gateway.keys import KeyFile
from tests.fakes.openai_server import FakeServer

from .harness import FALLBACK_KEY, UPSTREAM_KEY
from .test_keys_limits import HI, post
from .test_streams import ROLE, content

CANARIES = (UPSTREAM_KEY, FALLBACK_KEY)


def _exercise(gw: Any, fake: FakeServer, key: str) -> list[str]:
    """Every way an upstream can hand a key back (an error body, a header, a redirect's
    Location, an HTML page, a stream's error event, a stream cut off), through the
    gateway; everything the caller received, as text."""
    fake.reply(status=401, json={"error": {"message": f"Incorrect API key provided: {UPSTREAM_KEY}"}})
    fake.reply(status=400, json={"error": {"message": f"bad request with {UPSTREAM_KEY}", "param": UPSTREAM_KEY}},
               headers={"X-Request-Id": UPSTREAM_KEY})
    fake.reply(status=503, json={"error": {"message": f"down {UPSTREAM_KEY}"}})
    fake.reply(status=503, json={"error": {"message": f"backup down too {FALLBACK_KEY}"}})
    fake.reply(status=307, headers={"Location": f"http://127.0.0.1:9/v1?key={UPSTREAM_KEY}"}, body=b"")
    fake.reply(status=200, body=f"<html>login {UPSTREAM_KEY}</html>".encode(), content_type="text/html")
    seen = []
    for _ in range(5):
        status, headers, body = post(gw.url, key, {"model": "fast", "messages": HI})
        seen += [str(status), str(headers), json.dumps(body)]
    fake.stream([ROLE, {"error": {"message": f"stream failed {UPSTREAM_KEY}"}}])
    fake.stream([ROLE, content("y")], drop_after=2)
    seen.append(_stream(gw, key))
    with urllib.request.urlopen(gw.url + "/metrics", timeout=10) as response:  # noqa: S310 - loopback
        seen.append(response.read().decode())
    return seen


def _stream(gw: Any, key: str) -> str:
    body = json.dumps({"model": "fast", "messages": HI, "stream": True}).encode()
    data = b""
    with socket.create_connection(("127.0.0.1", int(gw.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode("utf-8", "replace")


def _check(texts: list[str], rows: list[Any], fake: FakeServer, key: str) -> None:
    assert rows
    for text in texts + [repr(row) for row in rows]:
        for canary in CANARIES:
            assert canary not in text
    for sent in fake.requests:  # the caller's key never went upstream
        assert key not in repr(sent.headers.raw) and "hgw-" not in repr(sent.headers.raw)


def test_no_upstream_key_in_responses_logs_or_sqlite_rows(gateway: Any, fake: FakeServer, keyfile: KeyFile,
                                                          tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          config: dict[str, Any]) -> None:
    caplog.set_level(logging.DEBUG)
    config["reliability"]["fallback_providers"] = ["backup"]
    _, key = keyfile.create("alice")
    gw = gateway()
    seen = _exercise(gw, fake, key)
    gw.close()
    rows = sqlite3.connect(tmp_path / "logs.db").execute("SELECT * FROM exchanges").fetchall()
    _check(seen + [record.getMessage() for record in caplog.records], rows, fake, key)


def test_no_upstream_key_in_postgres_rows(database_url: str, gateway: Any, fake: FakeServer, keyfile: KeyFile,
                                          caplog: pytest.LogCaptureFixture, config: dict[str, Any]) -> None:
    import psycopg

    caplog.set_level(logging.DEBUG)
    config["reliability"]["fallback_providers"] = ["backup"]
    _, key = keyfile.create("alice")
    gw = gateway(database_url=database_url)
    seen = _exercise(gw, fake, key)
    gw.close()
    with psycopg.connect(database_url) as db:
        rows = db.execute("SELECT * FROM exchanges").fetchall()
    _check(seen + [record.getMessage() for record in caplog.records], rows, fake, key)
