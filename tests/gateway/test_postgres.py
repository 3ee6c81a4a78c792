"""Usage rows in a real PostgreSQL: one row per request made, attributed to its key, with
the tokens and costs of the answers, written in batches (append-only)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import psycopg

from human.gateway.keys import KeyFile
from human.store import Query
from human.store.postgres import PostgresStore
from tests.fakes.openai_server import FakeServer

from .test_keys_limits import HI, USAGE, post
from .test_streams import BASE, ROLE, content


def test_usage_rows_equal_the_requests_made(database_url: str, gateway: Any, fake: FakeServer, keyfile: KeyFile,
                                            config: dict[str, Any]) -> None:
    config["prices"] = [{"provider": "fake", "model": "*", "input_mtok": 2.0, "output_mtok": 8.0}]
    alice, alice_key = keyfile.create("alice")
    bob, bob_key = keyfile.create("bob")
    gw = gateway(database_url=database_url)
    fake.completion("ok", usage=USAGE).as_default()
    threads = [threading.Thread(target=post, args=(gw.url, alice_key if i % 3 else bob_key,
                                                   {"model": "fast", "messages": HI})) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fake.default = None
    fake.stream([ROLE, content("streamed", "stop"), {**BASE, "choices": [], "usage": USAGE}])
    raw_stream_with_key(gw, alice_key)
    gw.close()  # flushes the log

    with psycopg.connect(database_url) as db:
        rows = db.execute("SELECT key_id, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost) "
                          "FROM exchanges GROUP BY key_id ORDER BY key_id").fetchall()
    by_key = {row[0]: row[1:] for row in rows}
    assert by_key[alice.id][0] == 21 and by_key[bob.id][0] == 10  # 20 + the stream; 10
    assert by_key[alice.id][1:3] == (21 * 9, 21 * 3)
    # 9 in at $2/M and 3 out at $8/M = $0.000042 a request, summed exactly (NUMERIC)
    assert by_key[bob.id][3] == Decimal("0.000042") * 10
    store = PostgresStore(database_url)
    try:
        usage = {row.key: row for row in store.usage(None, ["key"])}
        assert usage[alice.id].exchanges == 21 and usage[bob.id].cost == Decimal("0.00042")
        assert len(store.exchanges(Query(limit=None))) == 31
    finally:
        store.close()


def raw_stream_with_key(gw: Any, key: str) -> None:
    import json
    import socket

    body = json.dumps({"model": "fast", "messages": HI, "stream": True}).encode()
    port = int(gw.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        while sock.recv(65536):
            pass


def test_rows_are_appended_in_batches(database_url: str) -> None:
    from human.store import Exchange

    store = PostgresStore(database_url)
    try:
        rows = [Exchange(f"01J{i:023d}", f"01J{i:023d}", None, 1_700_000_000_000 + i, "p", "m", "m", key_id="k")
                for i in range(500)]
        store.append(rows)
        assert len(store.exchanges(Query(limit=None))) == 500
        again = PostgresStore(database_url)  # a second process migrating the same database: nothing to do
        again.close()
    finally:
        store.close()


def _rows_at(*ages_days: float) -> list[Any]:
    """One exchange (and its conversation) that started `age` days ago, for each age."""
    from human.store import Exchange
    from human.store.record import new_id

    rows = []
    for age in ages_days:
        ms = int((time.time() - age * 86_400) * 1000)
        row_id = new_id(ms)
        rows.append(Exchange(row_id, row_id, None, ms, "p", "m", "m", key_id="k"))
    return rows


def test_log_retention_days_prunes_postgres_and_one_process_prunes_at_a_time(database_url: str) -> None:
    from human.store.postgres import _PRUNE_LOCK

    store = PostgresStore(database_url, retention_days=1)
    try:
        old, recent = _rows_at(3, 0.5)
        store.append([old, recent])  # the first append prunes: the old row goes, with its conversation
        assert [row.id for row in store.exchanges(Query(limit=None))] == [recent.id]
        assert store._one("SELECT count(*) FROM conversations", ())[0] == 1
        store.append(_rows_at(5))  # within the hour: no second DELETE
        assert len(store.exchanges(Query(limit=None))) == 2
        with psycopg.connect(database_url) as other, other.transaction():
            other.execute("SELECT pg_advisory_xact_lock(%s)", (_PRUNE_LOCK,))  # another process is pruning
            assert store.prune(int(time.time() * 1000)) == 0
        assert store.prune(int(time.time() * 1000) - 86_400_000) == 1
    finally:
        store.close()

