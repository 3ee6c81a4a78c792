"""`Logbook`: how clients log without waiting for a database.

A client hands each finished exchange over with `add()` (the gateway hands over objects
with a `row()` method instead, run on the writer's thread like `build`): one deque append on the
caller's thread (or event loop), never a lock, never I/O. A daemon thread wakes every
`interval` seconds (or as soon as `batch` exchanges wait), turns what is pending into rows
(record.py: JSON, hashes, prices) and appends them to the store in one transaction. So
a log costs the request path next to nothing, and the event loop is never blocked by a
slow or locked database.

Failures never reach the caller. The first failed write logs one warning on the
`human.store` logger (later ones are debug lines); the rows stay pending and are written
with the next batch once the database accepts them (up to `max_pending` rows; beyond
that the oldest are dropped and the count is reported when the log recovers or closes).
`flush()` writes what is pending now, on the calling thread; `close()` flushes and stops
the thread; every logbook is also flushed at interpreter exit.

One logbook per database path is shared by every client of the process
(`logbook_for`), so a program with many clients still has one writer and one connection.
"""

from __future__ import annotations

import atexit
import collections
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from . import Exchange, Store
from .record import Finished, build, secrets_of

__all__ = ["Logbook", "RowMaker", "logbook_for"]

log = logging.getLogger("human.store")


class RowMaker(Protocol):
    """What a producer other than the clients hands over: its row is made on the writer's
    thread (the gateway prices its usage rows there)."""

    def row(self) -> Exchange | None: ...


class Logbook:
    def __init__(self, open_store: Callable[[], Store], *, interval: float = 0.25, batch: int = 256,
                 max_pending: int = 100_000, name: str = "", owned: bool = True) -> None:
        self._open_store = open_store
        self._owned = owned  # a store the caller made is never closed here
        self._interval, self._batch, self._max_pending = interval, batch, max_pending
        self.name = name
        self._items: collections.deque[Finished | RowMaker] = collections.deque()
        self._rows: list[Exchange] = []  # built, not yet written (a failed write keeps them here)
        self._recent: dict[bytes, tuple[str, str]] = {}  # thread_hash -> (id, conversation) of rows made here
        self._store: Store | None = None
        self._lock = threading.Lock()  # one writer at a time: the thread, flush() or close()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warned = False
        self._dropped = 0
        self.written = 0

    def __repr__(self) -> str:
        return f"Logbook({self.name!r}, pending={len(self._items) + len(self._rows)})"

    def add(self, item: Finished | RowMaker) -> None:
        """Take one finished exchange (see record.py for the tuple), or a `RowMaker`.
        Never blocks, never raises."""
        self._items.append(item)
        if self._thread is None:
            self._start()
        elif len(self._items) >= self._batch:
            self._wake.set()

    def flush(self) -> bool:
        """Write everything pending now, on this thread. True when nothing is left pending."""
        with self._lock:
            return self._write_pending()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()
        with self._lock:
            if self._dropped:
                log.warning("the log dropped %d exchange(s) that could not be written (%s)", self._dropped,
                            self.name)
                self._dropped = 0
            if self._store is not None and self._owned:
                self._store.close()
                self._store = None

    # ---- the writer thread --------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="human-log-writer", daemon=True)
                self._thread = thread
                thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._items or self._rows:
                with self._lock:
                    self._write_pending()

    def _write_pending(self) -> bool:
        """Under the lock: build rows from the items, append them in one batch."""
        try:
            self._build_rows()
            if self._rows:
                store = self._store or self._open()
                store.append(self._rows)
                self.written += len(self._rows)
                self._rows = []
                if self._warned:
                    log.info("the log is written again (%s)", self.name)
                    self._warned = False
        except Exception as exc:  # a log must never take the program down
            self._failed(exc)
            return False
        return True

    def _build_rows(self) -> None:
        items = self._items
        secrets: dict[int, tuple[str, ...]] = {}  # per client, for this batch (the items keep them alive)
        while items:
            item = items.popleft()
            try:
                if not isinstance(item, tuple):  # a row maker of another producer (the gateway's usage rows)
                    row = item.row()
                    if row is not None:
                        self._rows.append(row)
                    continue
                targets = item[8]
                known = secrets.get(id(targets))
                if known is None:
                    known = secrets[id(targets)] = secrets_of(targets)
                row = build(item, self._continues, known)
            except Exception as exc:  # one odd exchange must not stop the others
                log.debug("could not log an exchange: %r", exc)
                continue
            if row is None:
                continue
            self._rows.append(row)
            if row.thread_hash is not None:
                if len(self._recent) > 4096:
                    self._recent.clear()
                self._recent[row.thread_hash] = (row.id, row.conversation_id)
        overflow = len(self._rows) - self._max_pending
        if overflow > 0:
            del self._rows[:overflow]
            self._dropped += overflow

    def _continues(self, thread_hash: bytes) -> tuple[str, str] | None:
        found = self._recent.get(thread_hash)
        if found is not None:
            return found
        try:
            return self._open().continues(thread_hash)
        except Exception:  # the write will fail too, and say why
            return None

    def _open(self) -> Store:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def _failed(self, exc: BaseException) -> None:
        if self._store is not None and self._owned:
            try:
                self._store.close()
            except Exception:  # closing a broken connection
                pass
            self._store = None  # reopen next time: the file may have been fixed or unlocked
        if not self._warned:
            self._warned = True
            log.warning("could not write the log (%s): %s; requests go on, and the %d exchange(s) "
                        "will be written when it can be", self.name, _describe(exc), len(self._rows))
        else:
            log.debug("log write failed again: %s", _describe(exc))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---- one logbook per database -------------------------------------------------------------------

_books: dict[str, Logbook] = {}
_books_lock = threading.Lock()


def logbook_for(target: Any, env: Any = None) -> Logbook:
    """The process's logbook for a database: a path (made on first use, shared by every
    client that names it) or a `Store` object (shared by the clients given that object)."""
    from . import open_store

    given = hasattr(target, "append")
    key = f"store:{id(target)}" if given else str(target)
    with _books_lock:
        book = _books.get(key)
        if book is None or book._closed:
            if given:
                book = Logbook(functools.partial(_itself, target), name=repr(target), owned=False)
            else:
                book = Logbook(functools.partial(open_store, target, env=env), name=key)
            _books[key] = book
        return book


def _itself(store: Store) -> Store:
    return store


@atexit.register
def _flush_all() -> None:
    for book in list(_books.values()):
        try:
            book.flush()
        except Exception:  # exiting anyway
            pass
