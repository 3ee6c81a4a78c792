"""The log store: every exchange with a model, kept so it can be searched, continued and
summed up. One small interface, several backends:

    Store          the interface below (a Protocol): append rows in batches, read them back
    sqlite.py      SQLiteStore, the embedded default: ~/.human/logs.db ($HU_STATE_DIR/logs.db)
    migrations.py  its schema, as numbered migrations
    record.py      a finished exchange -> an `Exchange` row (pure: hashing, ids, conversations)
    writer.py      Logbook: takes exchanges from clients without blocking them and, from a
                   thread of its own, appends them to the process's journal; a failed
                   write warns once
    journal.py     the journals: one file per writing process beside the database; any
                   read of the log first imports them into rows (SQLiteStore.catch_up)

The interface is shaped for the gateway's PostgreSQL backend too (several machines, one
database): rows are append-only, ids are made by the writer (time-ordered, unique without
coordination), writes come in batches, and nothing is ever updated in place (no
per-request counter UPDATEs: totals are sums at read time; research wave2.md D.4).

Conversations are found, not declared: an exchange continues another when the messages it
sends begin with everything that other one sent plus its answer (a hash of each message
list, `record.py`). So a library user who appends `response.to_message()` and the next
question, and `human chat -c`, both land in the same conversation, with no API for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol

__all__ = ["Exchange", "Query", "Store", "UsageRow", "default_path", "open_store"]

FILE_NAME = "logs.db"


class Exchange(NamedTuple):
    """One request and what came of it, as stored. Text fields hold JSON where noted;
    `messages` holds only the messages that are new since `parent_id`'s exchange.

    A NamedTuple, not a frozen dataclass: the log makes one per request, and a frozen
    dataclass of 29 fields costs ~10 µs to build against ~1 µs (it is also the row a
    database driver takes as it is)."""

    id: str
    conversation_id: str
    parent_id: str | None
    started_ms: int
    provider: str | None
    model_requested: str | None
    model: str | None
    stream: bool = False
    prompt: str | None = None  # the text of the last user message, for lists and search
    messages: str | None = None  # JSON list
    options: str | None = None  # JSON object: temperature, max_tokens, tools...
    answer: str | None = None
    reasoning: str | None = None
    tool_calls: str | None = None  # JSON list, as sent back in an assistant message
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    cost: str | None = None  # USD, exact decimal; None = unknown (cost_note says why)
    cost_note: str | None = None  # where the price came from, or why there is none
    attempts: int = 1
    ttft_ms: float | None = None  # to the first streamed event; None for whole answers
    total_ms: float | None = None
    error_type: str | None = None
    error: str | None = None
    thread_hash: bytes | None = None  # hash of every message sent plus the answer (8 bytes)
    key_id: str | None = None  # the gateway key the request came with (human gateway), by id

    @property
    def ok(self) -> bool:
        return self.error_type is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (`human logs --json`)."""
        import json

        out: dict[str, Any] = {}
        for name in self._fields:
            value = getattr(self, name)
            if name == "thread_hash":
                continue
            if name in ("messages", "options", "tool_calls") and value is not None:
                value = json.loads(value)
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Query:
    """Which exchanges to list, newest first."""

    limit: int | None = 20
    model: str | None = None  # the model asked for, or the one that served
    provider: str | None = None
    text: str | None = None  # full-text search over prompts and answers
    since_ms: int | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Sums over the exchanges of one group (`human usage`). `cost` sums the priced
    exchanges only; `unpriced` counts the others, so a total is never silently short."""

    day: str | None
    provider: str | None
    model: str | None
    exchanges: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: Decimal
    unpriced: int
    key: str | None = None  # the gateway key id, when grouped "by key"


class Store(Protocol):
    """What the log needs from a database. Implementations: `SQLiteStore` (here),
    PostgreSQL (the gateway issue). Methods may be called from any one thread at a time."""

    def append(self, rows: Sequence[Exchange]) -> None:
        """Write rows in one transaction (all or none). Conversations are created as needed."""

    def continues(self, thread_hash: bytes) -> tuple[str, str] | None:
        """(exchange id, conversation id) of the latest exchange whose messages plus answer
        hash to `thread_hash`, if any."""

    def exchanges(self, query: Query) -> list[Exchange]:
        """Matching exchanges, newest first."""

    def get(self, exchange_id: str) -> Exchange | None:
        """By id, or by a prefix of it that only one exchange has."""

    def latest_conversation(self) -> str | None:
        """The conversation of the most recent exchange."""

    def history(self, conversation_id: str) -> list[dict[str, Any]]:
        """The messages of a conversation as its latest answered exchange saw them,
        answer included: what to send, with a new question, to continue it."""

    def usage(self, since_ms: int | None, by: Sequence[str]) -> list[UsageRow]:
        """Sums grouped by any of "day" (UTC), "provider", "model", "key" (the gateway key id)."""

    def delete(self, exchange_id: str) -> int:
        """Delete one exchange (id or unique prefix); the number deleted."""

    def delete_all(self) -> int:
        """Delete everything; the number of exchanges deleted."""

    def close(self) -> None: ...


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """`$HU_STATE_DIR/logs.db`, else `~/.human/logs.db` (issue 12)."""
    env = os.environ if env is None else env
    configured = env.get("HU_STATE_DIR", "").strip()
    if configured:
        return Path(configured).expanduser() / FILE_NAME
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".human" / FILE_NAME


# How often a store with a retention deletes what is older (SQLite when it imports its
# journals, PostgreSQL after an append): a DELETE an hour, not one per write.
PRUNE_EVERY_S = 3600.0


def open_store(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None,
               busy_timeout_ms: int = 10_000, retention_days: float | None = None) -> Store:
    """The SQLite store at `path` (default: `default_path`), created and migrated as needed.
    With `retention_days` (the config's `log_retention_days`), exchanges older than that
    are deleted when the store next imports its journals (at most once an hour)."""
    from .sqlite import SQLiteStore

    return SQLiteStore(Path(path) if path is not None else default_path(env), busy_timeout_ms=busy_timeout_ms,
                       retention_days=retention_days)
