"""`log_retention_days` holds for the gateway's usage log too, in SQLite and in PostgreSQL:
rows older than the retention are deleted by the writer (at most once an hour)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from human.store.postgres import PostgresStore
from human.store.sqlite import SQLiteStore
from tests.fakes.openai_server import FakeServer

from .test_keys_limits import HI, USAGE, post
from .test_postgres import _rows_at


def test_the_gateway_applies_log_retention_days_to_its_sqlite_log(gateway: Any, fake: FakeServer,
                                                                  config: dict[str, Any], tmp_path: Path) -> None:
    seeded = SQLiteStore(tmp_path / "logs.db")
    old, = _rows_at(40)
    seeded.append([old])
    seeded.close()
    config["log_retention_days"] = 30
    gw = gateway()
    fake.completion("ok", usage=USAGE)
    assert post(gw.url, None, {"model": "fast", "messages": HI})[0] == 200
    gw.close()  # the writer imports its journal on the way out: the step that prunes
    ids = [row[0] for row in sqlite3.connect(tmp_path / "logs.db").execute("SELECT id FROM exchanges")]
    assert len(ids) == 1 and old.id not in ids


def test_the_gateway_applies_log_retention_days_to_its_postgres_log(database_url: str, gateway: Any,
                                                                   fake: FakeServer, config: dict[str, Any]) -> None:
    seeded = PostgresStore(database_url)
    try:
        old, = _rows_at(40)
        seeded.append([old])
    finally:
        seeded.close()
    config["log_retention_days"] = 30
    gw = gateway(database_url=database_url)
    fake.completion("ok", usage=USAGE)
    assert post(gw.url, None, {"model": "fast", "messages": HI})[0] == 200
    gw.close()  # flushes the log: the append that prunes
    with psycopg.connect(database_url) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM exchanges").fetchall()]
    assert len(ids) == 1 and old.id not in ids
