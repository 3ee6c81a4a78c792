"""The SQLite log's schema, built and upgraded by numbered migrations (simonw/llm's
`migrations.py` pattern): each is a plain function, applied once, in order, and recorded
by name in `_migrations`. Never edit a migration that has shipped; add the next one.
`tests/unit/test_store.py` builds a database with every prefix of this list and checks
that upgrading it gives exactly the schema of a new one.

    conversations    id, name (the first prompt, shortened), started_ms
    exchanges        one request: who served it, what was sent (the messages new since
                     the exchange it continues), the answer, usage, cost, attempts,
                     timings, the error if it failed; append-only. Ids are ULIDs, so the
                     primary key is also the time index (`--since` is a range of ids)
    exchanges.key_id the gateway key of a request made through `human gateway` (m003)
    exchanges_fts    full-text index over prompt and answer (FTS5, external content),
                     brought up to date by the reader (`fts_upto`), never by the writer
    journal_offsets  how far each journal of a writing process (journal.py) has been
                     imported, moved on in the same transaction as the rows it became (m004)

Several processes may open a new file at once, so `migrate` runs inside BEGIN IMMEDIATE
and re-reads what is applied after taking the lock.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []
migration = MIGRATIONS.append


def migrate(db: sqlite3.Connection) -> None:
    """Apply what is missing. Cheap when nothing is: one pragma read."""
    if db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        applied = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        for step in MIGRATIONS:
            if step.__name__ not in applied:
                step(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)",
                           (step.__name__, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            name TEXT,
            started_ms INTEGER NOT NULL
        ) WITHOUT ROWID""")  # the id is the only key: no second b-tree for it
    # Append-only: a row is written once and never updated (no per-request UPDATE of
    # counters; totals are sums at read time, research wave2.md D.4). `seq` only grows
    # (AUTOINCREMENT never reuses a deleted number): the search index catches up by it.
    db.execute("""
        CREATE TABLE exchanges (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            conversation_id TEXT NOT NULL,
            parent_id TEXT,
            started_ms INTEGER NOT NULL,
            provider TEXT,
            model_requested TEXT,
            model TEXT,
            stream INTEGER NOT NULL DEFAULT 0,
            prompt TEXT,
            messages TEXT,
            options TEXT,
            answer TEXT,
            reasoning TEXT,
            tool_calls TEXT,
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cached_tokens INTEGER,
            cache_write_tokens INTEGER,
            reasoning_tokens INTEGER,
            total_tokens INTEGER,
            cost TEXT,
            cost_note TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            ttft_ms REAL,
            total_ms REAL,
            error_type TEXT,
            error TEXT,
            thread_hash BLOB
        )""")
    db.execute("CREATE INDEX exchanges_conversation ON exchanges (conversation_id)")
    db.execute("CREATE INDEX exchanges_thread ON exchanges (thread_hash)")


@migration
def m002_full_text_search(db: sqlite3.Connection) -> None:
    # External content (the text lives once, in exchanges), indexed on read: a search first
    # adds the rows written since the last one (`fts_upto`), so writing a row pays nothing
    # for the index (the log's budget is 15 % of a request's CPU, issue 12).
    db.execute("""
        CREATE VIRTUAL TABLE exchanges_fts USING fts5(
            prompt, answer, content='exchanges', content_rowid='seq')""")
    db.execute("CREATE TABLE fts_upto (seq INTEGER NOT NULL)")
    db.execute("INSERT INTO fts_upto VALUES (0)")
    # A deleted row leaves the index only if it was in it.
    db.execute("""
        CREATE TRIGGER exchanges_fts_delete AFTER DELETE ON exchanges
        WHEN old.seq <= (SELECT seq FROM fts_upto) BEGIN
            INSERT INTO exchanges_fts (exchanges_fts, rowid, prompt, answer)
            VALUES ('delete', old.seq, old.prompt, old.answer);
        END""")


@migration
def m003_gateway_key(db: sqlite3.Connection) -> None:
    # The gateway key a request came with (`human gateway`, issue 15): usage per key is a
    # sum over rows, like every other total (no per-key counter is ever updated).
    db.execute("ALTER TABLE exchanges ADD COLUMN key_id TEXT")


@migration
def m004_journal_offsets(db: sqlite3.Connection) -> None:
    # Processes that log append to journals and the rows are imported later (journal.py,
    # issue 12's 15 % budget); the offset moves in the transaction that inserts the rows,
    # so a record becomes a row once, whoever imports it and whenever.
    db.execute("CREATE TABLE journal_offsets (name TEXT PRIMARY KEY, imported_to INTEGER NOT NULL) WITHOUT ROWID")
