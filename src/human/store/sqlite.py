"""`SQLiteStore`: the log in one SQLite file, safe for several processes at once.

What keeps several writers from failing with "database is locked" (simonw/llm#789,
inspect_ai#4154 in research wave2.md D.2):
- WAL journal: readers never block the writer, nor the writer them;
- `busy_timeout` (default 10 s): a writer waits for another's lock instead of failing;
- every write is `BEGIN IMMEDIATE`: the write lock is taken up front, never upgraded
  from a read lock mid-transaction (an upgrade cannot wait, it fails at once);
- one transaction per batch of rows, so a busy log takes few locks;
- `synchronous=NORMAL`: in WAL mode this cannot corrupt the file; a power cut may lose
  the last transactions of a log, not the database.
The file is created 0600 (it holds prompts and answers) in a 0700 directory.

Processes that log do not insert rows: they append to journals (journal.py), and every
read here first imports what the journals hold (`catch_up`: the rows are built, linked
to their conversations and inserted, in batches of about a megabyte a transaction). With
a retention (`log_retention_days` in the config) the same step deletes what is older,
at most once an hour per store.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from . import PRUNE_EVERY_S, Exchange, Query, UsageRow, journal
from .migrations import migrate
from .record import ROW, id_floor, row_of

__all__ = ["SQLiteStore"]

log = logging.getLogger("human.store")

T = TypeVar("T")

_COLUMNS: tuple[str, ...] = Exchange._fields  # `seq` is SQLite's own: not a field
# OR IGNORE: an exchange's id is its identity, so a record imported twice (its journal's
# offset lost) is the same row, kept once; a plain INSERT failed that import's whole
# transaction on the UNIQUE id, and every import after it, so no journal was read again.
_INSERT_INTO = f"INSERT OR IGNORE INTO exchanges ({', '.join(_COLUMNS)})"
# Bound parameters per statement: 32766 since SQLite 3.32, 999 before.
_MAX_PARAMS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM exchanges"
_GROUPS = {"day": "date(started_ms / 1000, 'unixepoch')", "provider": "provider", "model": "model",
           "key": "key_id"}
IMPORT_BYTES = 1 << 20  # journal bytes per import transaction (~2,000 exchanges, ~0.15 s)


class SQLiteStore:
    """The embedded default store (see the module docstring)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000, retention_days: float | None = None) -> None:
        self.path = path
        self._journals = journal.located(path)  # where they are, whatever path names the database
        self._busy_s = busy_timeout_ms / 1000
        self._retention_ms = None if not retention_days else int(retention_days * 86_400_000)
        self._pruned_at: float | None = None  # monotonic time of the last prune
        self.imported_rows = 0  # rows the journal imports of this store have inserted
        self._db = self._open(busy_timeout_ms)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        fresh = not self.path.exists()
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Create it private before SQLite opens it: prompts and answers are personal.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Switching to WAL needs a moment alone with the file; when several processes
            # open a new log at once, one of them may be told "locked": wait and retry.
            self._retry(lambda: db.execute("PRAGMA journal_mode = WAL").fetchone())
            db.execute("PRAGMA synchronous = NORMAL")
            self._retry(lambda: migrate(db))
        except BaseException:
            db.close()
            raise
        db.create_aggregate("decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
        return db

    def _retry(self, action: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_s
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    # ---- writing ------------------------------------------------------------------------------

    def append(self, rows: Sequence[Exchange]) -> None:
        if not rows:
            return
        db = self._db

        def write() -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._insert(rows)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

        self._retry(write)

    def _insert(self, rows: Sequence[Exchange]) -> None:
        """Inside a write transaction: the rows, and the conversations they begin."""
        conversations = {}
        for row in rows:
            if row.parent_id is None and row.conversation_id not in conversations:
                conversations[row.conversation_id] = (row.conversation_id, _name(row.prompt), row.started_ms)
        _insert_many(self._db, "INSERT OR IGNORE INTO conversations (id, name, started_ms)", 3,
                     list(conversations.values()))
        _insert_many(self._db, _INSERT_INTO, len(_COLUMNS), rows)  # an Exchange is a tuple in column order

    # ---- importing the journals (journal.py) ---------------------------------------------------

    def catch_up(self, *, budget_s: float | None = None, max_bytes: int = IMPORT_BYTES,
                 pause: Callable[[], None] | None = None) -> bool:
        """Import every whole record the journals of this database hold (and prune, when a
        retention is set and an hour has passed). True when nothing is left to import;
        False when `budget_s` (seconds) ran out first. Raises sqlite3.Error or OSError
        when the database cannot be written (read-only, locked for longer than the busy
        timeout); what was not imported stays in the journals. `max_bytes` of journal a
        transaction, and `pause()` between two: a busy writer's short slices (pacing.py).
        `imported_rows` counts the rows this store has inserted so far."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        done = not journal.available or not journal.journal_names(self._journals)
        while not done:
            done = self._retry(functools.partial(self._import_some, max_bytes))
            if deadline is not None and time.monotonic() > deadline:
                break
            if pause is not None and not done:
                pause()
        if self._retention_ms is not None and (
                self._pruned_at is None or time.monotonic() - self._pruned_at > PRUNE_EVERY_S):
            self.prune(int(time.time() * 1000) - self._retention_ms)
        return done

    def _import_some(self, max_bytes: int = IMPORT_BYTES) -> bool:
        """One transaction: up to IMPORT_BYTES of records from the journals, oldest
        exchange first, as rows; each journal's offset moves with them. True when every
        journal was read to its end."""
        db, folder = self._db, self._journals.parent
        scans: list[journal.Scan] = []
        committed = False
        db.execute("BEGIN IMMEDIATE")
        try:
            names = journal.journal_names(self._journals)  # listed again under the lock
            offsets = dict(db.execute("SELECT name, imported_to FROM journal_offsets").fetchall())
            budget, done = max_bytes, True
            for name in names:
                if budget <= 0:
                    done = False
                    break
                found = journal.scan(folder, name, offsets.get(name, 0), budget)
                if found is not None:
                    scans.append(found)
                    budget -= found.end - max(offsets.get(name, 0), len(journal.MAGIC))
                    done = done and not found.more
            records = [record for found in scans for record, _ in found.records]
            records.sort(key=_started)  # a parent before the exchanges that continue it
            rows = self._rows(records)
            self._insert(rows)
            for found in scans:
                if found.end != offsets.get(found.name):
                    db.execute("INSERT OR REPLACE INTO journal_offsets VALUES (?, ?)", (found.name, found.end))
            listed = set(names)
            gone = [(name,) for name in offsets if name not in listed]  # deleted once wholly imported
            if gone:
                db.executemany("DELETE FROM journal_offsets WHERE name = ?", gone)
            db.execute("COMMIT")
            committed = True
            self.imported_rows += len(rows)
        finally:
            if not committed and db.in_transaction:
                db.execute("ROLLBACK")
            for found in scans:
                found.release(folder, committed)
        return done

    def _rows(self, records: list[Any]) -> list[Exchange]:
        made: dict[bytes, tuple[str, str]] = {}  # thread hash -> (id, conversation) of this batch

        def continues(thread_hash: bytes) -> tuple[str, str] | None:
            return made.get(thread_hash) or self.continues(thread_hash)

        rows = []
        for record in records:
            try:
                row = row_of(record, continues)
            except Exception as exc:  # one odd record must not hold up the others
                log.warning("could not import an exchange from the log's journal: %r", exc)
                continue
            if row is not None:
                rows.append(row)
                if row.thread_hash is not None:
                    made[row.thread_hash] = (row.id, row.conversation_id)
        return rows

    def imported_to(self, name: str) -> int:
        """How far journal `name` has been imported (0: not at all)."""
        found = self._db.execute("SELECT imported_to FROM journal_offsets WHERE name = ?", (name,)).fetchone()
        return 0 if found is None else int(found[0])

    def prune(self, before_ms: int) -> int:
        """Delete the exchanges that started before `before_ms` (unix ms), and the
        conversations left without any; the number of exchanges deleted."""
        self._pruned_at = time.monotonic()
        deleted = self._write("DELETE FROM exchanges WHERE id < ?", (id_floor(before_ms),))
        if deleted:
            self._write("DELETE FROM conversations WHERE started_ms < ? AND id NOT IN "
                        "(SELECT conversation_id FROM exchanges)", (before_ms,))
        return deleted

    def _fresh(self) -> None:
        """Before a read: import the journals; when that cannot be done (a read-only or
        locked database), what is already in the table is read."""
        try:
            self.catch_up()
        except (sqlite3.Error, OSError) as exc:
            log.debug("could not import the log's journals before reading: %s", exc)

    # ---- reading ------------------------------------------------------------------------------

    def continues(self, thread_hash: bytes) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT id, conversation_id FROM exchanges WHERE thread_hash = ? ORDER BY rowid DESC LIMIT 1",
            (thread_hash,)).fetchone()
        return None if row is None else (row[0], row[1])

    def exchanges(self, query: Query) -> list[Exchange]:
        self._fresh()
        where: list[str] = []
        params: list[Any] = []
        if query.text:
            where.append("seq IN (SELECT rowid FROM exchanges_fts WHERE exchanges_fts MATCH ?)")
            params.append(_fts_query(query.text))
            if not self._index():  # read-only or locked: what is not indexed yet is scanned
                where[-1] = f"({where[-1]} OR (seq > (SELECT seq FROM fts_upto) AND {_scan(query.text, params)}))"
        if query.model:
            where.append("(model = ? OR model_requested = ?)")
            params += [query.model, query.model]
        if query.provider:
            where.append("provider = ?")
            params.append(query.provider)
        if query.since_ms is not None:
            where.append("id >= ?")  # ids sort by time: a range of the primary key
            params.append(id_floor(query.since_ms))
        if query.conversation_id:
            where.append("conversation_id = ?")
            params.append(query.conversation_id)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [_exchange(row) for row in self._db.execute(sql, params)]

    def _index(self) -> bool:
        """Add the rows written since the last search to the full-text index."""
        db = self._db

        def run() -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO exchanges_fts (rowid, prompt, answer) SELECT seq, prompt, answer "
                           "FROM exchanges WHERE seq > (SELECT seq FROM fts_upto)")
                db.execute("UPDATE fts_upto SET seq = (SELECT coalesce(max(seq), 0) FROM exchanges)")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

        try:
            self._retry(run)
        except sqlite3.OperationalError:
            return False
        return True

    def get(self, exchange_id: str) -> Exchange | None:
        self._fresh()
        rows = self._db.execute(_SELECT + " WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                                (_like_prefix(exchange_id),)).fetchall()
        exact = [row for row in rows if row[0] == exchange_id]
        if exact:
            return _exchange(exact[0])
        return _exchange(rows[0]) if len(rows) == 1 else None

    def latest_conversation(self) -> str | None:
        self._fresh()
        row = self._db.execute(
            "SELECT conversation_id FROM exchanges ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        self._fresh()
        rows = self._db.execute(
            "SELECT id, parent_id, messages, answer, tool_calls, error_type FROM exchanges "
            "WHERE conversation_id = ? ORDER BY id", (conversation_id,)).fetchall()
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
        self._fresh()
        unknown = [name for name in by if name not in _GROUPS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)}; use day, provider or model")
        keys = [f"{_GROUPS[name]} AS {name}" for name in by]
        sql = (
            f"SELECT {', '.join(keys + [''])} count(*), count(error_type), coalesce(sum(prompt_tokens), 0), "
            "coalesce(sum(completion_tokens), 0), coalesce(sum(cached_tokens), 0), "
            "coalesce(sum(reasoning_tokens), 0), decimal_sum(cost), "
            "sum(CASE WHEN cost IS NULL AND error_type IS NULL THEN 1 ELSE 0 END) FROM exchanges"
        )
        params: list[Any] = []
        if since_ms is not None:
            sql += " WHERE id >= ?"
            params.append(id_floor(since_ms))
        if by:
            sql += f" GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}"
        out = []
        for row in self._db.execute(sql, params):
            groups = dict(zip(by, row[: len(by)]))
            (exchanges, errors, prompt, completion, cached, reasoning, cost, unpriced) = row[len(by):]
            if exchanges == 0:
                continue
            out.append(UsageRow(groups.get("day"), groups.get("provider"), groups.get("model"), exchanges, errors,
                                prompt, completion, cached, reasoning, Decimal(cost), unpriced,
                                groups.get("key")))
        return out

    # ---- deleting -----------------------------------------------------------------------------

    def delete(self, exchange_id: str) -> int:
        found = self.get(exchange_id)  # imports the journals first
        if found is None:
            return 0
        return self._write("DELETE FROM exchanges WHERE id = ?", (found.id,))

    def delete_all(self) -> int:
        self._fresh()
        deleted = self._write("DELETE FROM exchanges", ())
        self._write("DELETE FROM conversations", ())
        return deleted  # the index emptied itself (trigger); seq never goes back, so fts_upto stays right

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        db = self._db

        def run() -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                count = db.execute(sql, params).rowcount
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return count

        return self._retry(run)

    def close(self) -> None:
        self._db.close()


def _insert_many(db: sqlite3.Connection, insert: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
    """Many rows per INSERT (`VALUES (...), (...)`), not one statement per row as
    executemany runs them: a third less work in SQLite, and one release of the GIL per
    statement instead of one per row, so the request threads are not interrupted per row.

    In chunks of a few fixed sizes (_CHUNKS), not "all that is left": the connection
    caches every statement it prepares (128 of them), and a multi-row INSERT is a large
    program (~4 KB a row). Batches of any size once made a statement per size, and a busy
    gateway's writer, importing slices of 1 to 120 rows, held ~25 MB of them (RSS 47 →
    75 MB)."""
    per = max(1, _MAX_PARAMS // width)
    start, count = 0, len(rows)
    for size in _CHUNKS:
        size = min(size, per)
        sql = None
        while count - start >= size:
            sql = sql or _statement(insert, width, size)
            db.execute(sql, [value for row in rows[start:start + size] for value in row])
            start += size


_CHUNKS = (256, 64, 16, 4, 1)  # at most 3 of each below the largest: few statements, few shapes


@functools.lru_cache(maxsize=16)
def _statement(insert: str, width: int, count: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"{insert} VALUES {','.join([one] * count)}"


def answer_message(answer: str | None, tool_calls: str | None) -> dict[str, Any]:
    """The assistant message an answer becomes (as `ChatResponse.to_message()` makes it)."""
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    if tool_calls:
        message["tool_calls"] = json.loads(tool_calls)
    return message


_STREAM = _COLUMNS.index("stream")


def _exchange(row: Sequence[Any]) -> Exchange:
    values = list(row)
    values[_STREAM] = bool(values[_STREAM])
    return Exchange(*values)


class _DecimalSum:
    """SUM over decimal strings, exact (SQLite's SUM would go through floats)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return str(self.total)


def _started(record: Any) -> float:
    if record[0] == ROW:
        return float(record[1].get("started_ms") or 0) / 1000
    return float(record[1])


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _name(prompt: str | None) -> str | None:
    if not prompt:
        return None
    line = " ".join(prompt.split())
    return line if len(line) <= 60 else line[:59] + "…"


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _scan(text: str, params: list[Any]) -> str:
    """Every word in the prompt or the answer, without the index (adds its parameters)."""
    clauses = []
    for word in text.split():
        clauses.append("(prompt LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\')")
        pattern = "%" + _like_prefix(word)
        params += [pattern, pattern]
    return " AND ".join(clauses) or "1"


def _fts_query(text: str) -> str:
    """Every word must appear; FTS5 syntax in the text is taken literally."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())
