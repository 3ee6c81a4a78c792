"""`PostgresStore`: the log in PostgreSQL, for several gateway machines writing one log
(`gateway.database_url`; the `human[postgres]` extra).

The driver is psycopg 3, not asyncpg: the log is written by `Logbook`'s own thread
(writer.py), never on an event loop, so a synchronous driver fits without a second loop
in that thread; psycopg's `COPY ... FROM STDIN` writes a batch of rows as one stream,
the cheapest way into PostgreSQL; and it is the maintained successor of psycopg2 with
binary wheels (`psycopg[binary]`), so no compiler or libpq is needed to install it.

What keeps many writers from hurting each other (LiteLLM's spend-log history:
deadlocks litellm#6895, #27989, "too many clients" #18708):
- append-only: one COPY per batch into `exchanges`, never an UPDATE of a counter; totals
  are sums at read time (research wave2.md C.4, lesson 3);
- one connection per process (the log's writer thread), batches of up to 256 rows every
  ~0.25 s, so a busy gateway makes few, large writes;
- ids are ULIDs made by the writer (time-ordered, unique without coordination), so no
  sequence or lock is shared; a conversation row is `INSERT ... ON CONFLICT DO NOTHING`.

The schema is made by numbered migrations recorded in `human_migrations`, under an
advisory lock so that several processes starting at once migrate once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from ..errors import ConfigError
from . import PRUNE_EVERY_S, Exchange, Query, UsageRow
from .record import id_floor

__all__ = ["PostgresStore"]

_COLUMNS: tuple[str, ...] = Exchange._fields
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM exchanges"
_GROUPS = {"day": "to_char(to_timestamp(started_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
           "provider": "provider", "model": "model", "key": "key_id"}
_LOCK = 0x68756D616E  # "human": the advisory lock that serialises migrations
_PRUNE_LOCK = _LOCK + 1  # taken by the one process that prunes: the others skip their turn


def _m001(cursor: Any) -> None:
    cursor.execute("""
        CREATE TABLE IF NOT EXISTS conversations (
            id TEXT PRIMARY KEY,
            name TEXT,
            started_ms BIGINT NOT NULL
        )""")
    cursor.execute("""
        CREATE TABLE IF NOT EXISTS exchanges (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            parent_id TEXT,
            started_ms BIGINT NOT NULL,
            provider TEXT,
            model_requested TEXT,
            model TEXT,
            stream BOOLEAN NOT NULL DEFAULT FALSE,
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
            cost NUMERIC,
            cost_note TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            ttft_ms DOUBLE PRECISION,
            total_ms DOUBLE PRECISION,
            error_type TEXT,
            error TEXT,
            thread_hash BYTEA,
            key_id TEXT
        )""")
    cursor.execute("CREATE INDEX IF NOT EXISTS exchanges_conversation ON exchanges (conversation_id)")
    cursor.execute("CREATE INDEX IF NOT EXISTS exchanges_thread ON exchanges (thread_hash)")
    cursor.execute("CREATE INDEX IF NOT EXISTS exchanges_key ON exchanges (key_id, id)")


def _m002(cursor: Any) -> None:
    """Named documents, each read and replaced whole (the gateway's keys, `gateway/dbkeys.py`);
    `version` grows by one on every change, so a reader polls one integer."""
    cursor.execute("""
        CREATE TABLE IF NOT EXISTS documents (
            name TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            version BIGINT NOT NULL
        )""")


MIGRATIONS: list[Callable[[Any], None]] = [_m001, _m002]


class PostgresStore:
    """The `Store` interface over one PostgreSQL connection (see the module docstring).
    Used from one thread at a time (the log's writer, or a command)."""

    def __init__(self, url: str, *, connect_timeout_s: int = 5, retention_days: float | None = None) -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigError("gateway.database_url needs psycopg 3: pip install 'human[postgres]'") from None
        from ..core.secret import scrub

        self.url = url
        self.shown = scrub(url)
        self._retention_ms = None if not retention_days else int(retention_days * 86_400_000)
        self._pruned_at: float | None = None
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to the database {self.shown}: {type(exc).__name__}: "
                              f"{scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else '', url)}") from None
        self._migrate()

    def __repr__(self) -> str:
        return f"PostgresStore({self.shown!r})"

    @staticmethod
    def describe(url: str) -> str:
        """The URL as it may be shown (a password masked)."""
        from ..core.secret import scrub

        return f"PostgreSQL {scrub(url)}"

    def _migrate(self) -> None:
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            cursor.execute("CREATE TABLE IF NOT EXISTS human_migrations (name TEXT PRIMARY KEY, "
                           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            cursor.execute("SELECT name FROM human_migrations")
            applied = {row[0] for row in cursor.fetchall()}
            for step in MIGRATIONS:
                if step.__name__ not in applied:
                    step(cursor)
                    cursor.execute("INSERT INTO human_migrations (name) VALUES (%s)", (step.__name__,))

    # ---- writing ------------------------------------------------------------------------------

    def append(self, rows: Sequence[Exchange]) -> None:
        """One transaction: the new conversations, then every row in one COPY."""
        if not rows:
            return
        conversations = {}
        for row in rows:
            if row.parent_id is None and row.conversation_id not in conversations:
                conversations[row.conversation_id] = (row.conversation_id, _name(row.prompt), row.started_ms)
        with self._db.transaction(), self._db.cursor() as cursor:
            if conversations:
                cursor.executemany("INSERT INTO conversations (id, name, started_ms) VALUES (%s, %s, %s) "
                                   "ON CONFLICT (id) DO NOTHING", list(conversations.values()))
            with cursor.copy(f"COPY exchanges ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        if self._retention_ms is not None and (
                self._pruned_at is None or time.monotonic() - self._pruned_at > PRUNE_EVERY_S):
            self.prune(int(time.time() * 1000) - self._retention_ms)

    def prune(self, before_ms: int) -> int:
        """Delete the exchanges that started before `before_ms` (unix ms), and the
        conversations left without any; the number of exchanges deleted. Several gateway
        processes share one database: the one holding the advisory lock prunes, the others
        skip (0), so two never delete the same rows at once."""
        self._pruned_at = time.monotonic()
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (_PRUNE_LOCK,))
            locked = cursor.fetchone()
            if locked is None or not locked[0]:
                return 0
            cursor.execute("DELETE FROM exchanges WHERE id < %s", (id_floor(before_ms),))
            deleted = int(cursor.rowcount)
            if deleted:
                cursor.execute("DELETE FROM conversations c WHERE started_ms < %s AND NOT EXISTS "
                               "(SELECT 1 FROM exchanges e WHERE e.conversation_id = c.id)", (before_ms,))
            return deleted

    # ---- reading ------------------------------------------------------------------------------

    def continues(self, thread_hash: bytes) -> tuple[str, str] | None:
        row = self._one("SELECT id, conversation_id FROM exchanges WHERE thread_hash = %s ORDER BY id DESC LIMIT 1",
                        (thread_hash,))
        return None if row is None else (row[0], row[1])

    def exchanges(self, query: Query) -> list[Exchange]:
        where: list[str] = []
        params: list[Any] = []
        if query.text:
            for word in query.text.split():
                where.append("(prompt ILIKE %s OR answer ILIKE %s)")
                pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                params += [pattern, pattern]
        if query.model:
            where.append("(model = %s OR model_requested = %s)")
            params += [query.model, query.model]
        if query.provider:
            where.append("provider = %s")
            params.append(query.provider)
        if query.since_ms is not None:
            where.append("id >= %s")
            params.append(id_floor(query.since_ms))
        if query.conversation_id:
            where.append("conversation_id = %s")
            params.append(query.conversation_id)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [_exchange(row) for row in self._all(sql, params)]

    def get(self, exchange_id: str) -> Exchange | None:
        rows = self._all(_SELECT + " WHERE id LIKE %s LIMIT 2", (exchange_id.replace("%", "") + "%",))
        exact = [row for row in rows if row[0] == exchange_id]
        if exact:
            return _exchange(exact[0])
        return _exchange(rows[0]) if len(rows) == 1 else None

    def latest_conversation(self) -> str | None:
        row = self._one("SELECT conversation_id FROM exchanges ORDER BY id DESC LIMIT 1", ())
        return None if row is None else str(row[0])

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        from .sqlite import answer_message

        rows = self._all("SELECT id, parent_id, messages, answer, tool_calls, error_type FROM exchanges "
                         "WHERE conversation_id = %s ORDER BY id", (conversation_id,))
        by_id = {row[0]: row for row in rows}
        answered = [row for row in rows if row[5] is None]
        if not answered:
            return []
        chain = []
        row: Any = answered[-1]
        while row is not None:
            chain.append(row)
            row = by_id.get(row[1]) if row[1] else None
        messages: list[dict[str, Any]] = []
        for _, _, sent, answer, tool_calls, _ in reversed(chain):
            messages += json.loads(sent or "[]")
            messages.append(answer_message(answer, tool_calls))
        return messages

    def usage(self, since_ms: int | None, by: Sequence[str]) -> list[UsageRow]:
        unknown = [name for name in by if name not in _GROUPS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)}; use day, provider, model or key")
        keys = [f"{_GROUPS[name]} AS {name}" for name in by]
        sql = (f"SELECT {', '.join(keys + [''])} count(*), count(error_type), coalesce(sum(prompt_tokens), 0), "
               "coalesce(sum(completion_tokens), 0), coalesce(sum(cached_tokens), 0), "
               "coalesce(sum(reasoning_tokens), 0), coalesce(sum(cost), 0), "
               "sum(CASE WHEN cost IS NULL AND error_type IS NULL THEN 1 ELSE 0 END) FROM exchanges")
        params: list[Any] = []
        if since_ms is not None:
            sql += " WHERE id >= %s"
            params.append(id_floor(since_ms))
        if by:
            sql += f" GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}"
        out = []
        for row in self._all(sql, params):
            groups = dict(zip(by, row[: len(by)]))
            exchanges, errors, prompt, completion, cached, reasoning, cost, unpriced = row[len(by):]
            if exchanges == 0:
                continue
            out.append(UsageRow(groups.get("day"), groups.get("provider"), groups.get("model"), exchanges, errors,
                                int(prompt), int(completion), int(cached), int(reasoning), Decimal(cost),
                                int(unpriced), groups.get("key")))
        return out

    # ---- documents (read and replaced whole) ---------------------------------------------------

    def document(self, name: str) -> tuple[int, str] | None:
        """(version, body) of the document `name`, None when there is none."""
        row = self._one("SELECT version, body FROM documents WHERE name = %s", (name,))
        return None if row is None else (int(row[0]), str(row[1]))

    def document_version(self, name: str) -> int | None:
        row = self._one("SELECT version FROM documents WHERE name = %s", (name,))
        return None if row is None else int(row[0])

    @contextmanager
    def changing(self, name: str) -> Iterator[None]:
        """One transaction holding the document's row lock: reads (`document`) and the
        write (`put_document`) inside it see no other writer's change in between; two
        machines changing it at once take turns."""
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.execute("INSERT INTO documents (name, body, version) VALUES (%s, '', 0) "
                           "ON CONFLICT (name) DO NOTHING", (name,))
            cursor.execute("SELECT version FROM documents WHERE name = %s FOR UPDATE", (name,))
            yield

    def put_document(self, name: str, body: str) -> None:
        with self._db.cursor() as cursor:
            cursor.execute("INSERT INTO documents (name, body, version) VALUES (%s, %s, 1) ON CONFLICT (name) "
                           "DO UPDATE SET body = EXCLUDED.body, version = documents.version + 1", (name, body))

    # ---- deleting -----------------------------------------------------------------------------

    def delete(self, exchange_id: str) -> int:
        found = self.get(exchange_id)
        if found is None:
            return 0
        with self._db.cursor() as cursor:
            cursor.execute("DELETE FROM exchanges WHERE id = %s", (found.id,))
            return int(cursor.rowcount)

    def delete_all(self) -> int:
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.execute("DELETE FROM exchanges")
            count = int(cursor.rowcount)
            cursor.execute("DELETE FROM conversations")
            return count

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        with self._db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def _exchange(row: Sequence[Any]) -> Exchange:
    values = list(row)
    cost = _COLUMNS.index("cost")
    if values[cost] is not None:
        values[cost] = str(values[cost])
    thread = _COLUMNS.index("thread_hash")
    if values[thread] is not None:
        values[thread] = bytes(values[thread])
    return Exchange(*values)


def _name(prompt: str | None) -> str | None:
    if not prompt:
        return None
    line = " ".join(prompt.split())
    return line if len(line) <= 60 else line[:59] + "…"
