"""`Logbook`: how clients log without waiting for a database.

A client hands each finished exchange over with `add()`, on the caller's thread (or event
loop): a deque append, never a lock, never I/O. A daemon thread wakes every
`interval` seconds (or as soon as `batch` exchanges wait) and takes what is pending:

- to a SQLite log by path (`Client(log=True)`, `log="path"`, the CLI): every 32nd
  `add()` captures the exchanges waiting and seals them in one batch (record.py: plain
  values, secrets scrubbed; ~20 µs an exchange, on the caller's thread, no I/O), and the
  thread appends the batches to this process's journal beside the database
  (journal.py). Building the rows and inserting them (~90 µs an exchange) is left to
  whoever reads the log next, or done here when the process has made no request for
  `idle` seconds, a little at each wake once a never-idle process has a backlog
  (pacing.py), and when the logbook closes (at interpreter exit, within
  `exit_budget` seconds; what is left waits for a reader);
- to a `Store` object (`log=store`; the gateway's PostgreSQL): rows are built here and
  appended to it in one transaction per batch (as on a platform without journals).

So a log costs the request path next to nothing, and the event loop is never blocked by
a slow or locked database.

Failures never reach the caller. The first failed write logs one warning on the
`human.store` logger (later ones are debug lines); what failed stays pending and is
written with the next batch once it can be (up to `max_pending` exchanges; beyond that
the oldest are dropped and the count is reported when the log recovers or closes).
`flush()` writes what is pending now, on the calling thread; `close()` flushes, imports
and stops the thread; every logbook is also closed at interpreter exit.

A producer other than the clients may hand over an `Exchange` row, or an object with a
`row()` method that makes one on the writer's thread (`RowMaker`: the gateway's usage rows).

One logbook per database path is shared by every client of the process
(`books.logbook_for`), so a program with many clients still has one writer and one journal.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import Exchange, Store, journal
from .pacing import BACKLOG_LIMIT, BUSY_IMPORT_BYTES, BUSY_IMPORT_S, breather, no_pause, pause
from .record import ROW, Finished, build, capture, cheap, seal, secrets_of

if TYPE_CHECKING:
    from .sqlite import SQLiteStore

__all__ = ["Logbook", "RowMaker"]

log = logging.getLogger("human.store")

class RowMaker(Protocol):
    """What a producer other than the clients may hand over: its row is made on the
    writer's thread (the gateway prices its usage rows there)."""

    def row(self) -> Exchange | None: ...


class Logbook:
    def __init__(self, open_store: Callable[[], Store], *, interval: float = 0.25, batch: int = 256,
                 max_pending: int = 100_000, name: str = "", owned: bool = True, journal_for: Path | None = None,
                 idle: float = 2.0, exit_budget: float = 1.0, seal_every: int = 32,
                 backlog_limit: int | None = None) -> None:
        self._open_store = open_store
        self._owned = owned  # a store the caller made is never closed here
        self._interval, self._batch, self._max_pending = interval, batch, max_pending
        self._idle, self._exit_budget = idle, exit_budget
        self.name = name
        self._items: collections.deque[Any] = collections.deque()  # as handed over
        self._ready: collections.deque[Any] = collections.deque()  # sealed frames (bytes), or items to seal
        self._seal_every = seal_every
        # journal mode: sealed records not yet in the journal; else rows not yet written
        self._journal = journal.Journal(journal_for) if journal_for is not None and journal.available else None
        self._frames: list[_Batch] = []
        self._rows: list[Exchange] = []
        self._recent: dict[bytes, tuple[str, str]] = {}  # thread_hash -> (id, conversation) of rows made here
        self._known: tuple[Any, int, tuple[str, ...]] | None = None  # (targets, how many, their secrets)
        self._store: Store | None = None
        self._lock = threading.Lock()  # one writer at a time: the thread, flush() or close()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warned = False
        self._dropped = 0
        self._unimported = False  # this process journaled exchanges no import has taken yet
        self._backlog = 0  # about how many of them (pacing.BACKLOG_LIMIT: past it, import while busy)
        self._backlog_limit = BACKLOG_LIMIT if backlog_limit is None else backlog_limit
        self.written = 0
        _every.add(self)

    def __repr__(self) -> str:
        pending = len(self._items) + len(self._ready) + len(self._frames) + len(self._rows)
        return f"Logbook({self.name!r}, pending={pending})"

    def add(self, item: Finished | Exchange | RowMaker) -> None:
        """Take one finished exchange (see record.py for the tuple), a row, or a
        `RowMaker`. Never blocks, never raises.

        In journal mode, every `seal_every`-th call also captures and seals the exchanges
        waiting so far, on the caller's thread (~20 µs each, no I/O, no lock), so that
        what waits for the writer is ~500 bytes an exchange, not the response and the
        parsed body it keeps alive (see `_seal_some`)."""
        items = self._items
        items.append(item)
        if self._thread is None:
            self._start()
        elif len(items) >= self._seal_every:
            if self._journal is not None:
                self._seal_some()
                if len(self._ready) >= self._batch:
                    self._wake.set()
            elif len(items) >= self._batch:
                self._wake.set()

    def _seal_some(self, on_writer: bool = False) -> None:
        """Capture the exchanges waiting in `_items` and seal them into one framed record
        in `_ready`: in a batch, where the code and its data stay in the CPU's caches (one
        at a time, on the request path, it measured three times slower), and soon,
        because keeping the responses for the writer's next batch (256) measured +5 to
        +9 % CPU a request at 64 in flight (a larger working set). Any thread may run it:
        each item is taken once (deque.popleft). On a caller's thread it leaves what would
        read files (a first price lookup: `record.cheap`) or run a producer's code (a
        `RowMaker`) to the writer's thread (`on_writer`)."""
        items, ready = self._items, self._ready
        records: list[Any] = []
        secrets: tuple[str, ...] = ()
        breathe = breather(len(items) + len(ready)) if on_writer else no_pause
        for _ in range(len(items)):
            breathe()
            try:
                item = items.popleft()
            except IndexError:
                break
            if on_writer or (item.__class__ is tuple and cheap(item)):
                try:
                    if item.__class__ is tuple:
                        record = capture(item)
                        if record is None:
                            continue
                        known = self._secrets(item[8])
                        if known is not secrets:
                            secrets = known if not secrets else tuple({*secrets, *known})
                        records.append(record)
                        continue
                    row = _row(item)
                    if row is not None:
                        records.append((ROW, row._asdict()))
                    continue
                except Exception:  # left as it is: the writer tries again alone, and says why
                    pass
            ready.append(item)  # a first price to look up, or a producer's row: the writer's work
        if records:
            try:
                ready.append(_batch(seal(records, secrets), len(records)))
            except Exception:  # then one by one: only the odd one is lost (and said so)
                for record in records:
                    try:
                        ready.append(_batch(seal([record], secrets), 1))
                    except Exception as exc:
                        log.debug("could not log an exchange: %r", exc)

    def _secrets(self, targets: Any) -> tuple[str, ...]:
        """The keys of a client's targets, remembered while it resolves no new target."""
        known = self._known
        if known is None or known[0] is not targets or known[1] != len(targets):
            known = self._known = (targets, len(targets), secrets_of(targets))
        return known[2]

    def flush(self) -> bool:
        """Write everything pending now, on this thread (to the journal, in journal
        mode). True when nothing is left pending."""
        with self._lock:
            return self._write_pending()

    def close(self) -> None:
        """Flush, import this process's journal (within `exit_budget` seconds) and stop."""
        self._closed = True
        self._wake.set()
        with self._lock:
            if not self._write_pending():
                self._give_up()
            if self._journal is not None:
                if self._unimported:
                    self._import(self._exit_budget)
                self._close_journal()
            self._report_dropped()
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
        quiet = 0.0  # seconds without a new exchange
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._items or self._ready or self._frames or self._rows:
                quiet = 0.0
                with self._lock:
                    self._write_pending()
                    if self._unimported and self._backlog > self._backlog_limit:  # never idle: import a little
                        self._import(BUSY_IMPORT_S, max_bytes=BUSY_IMPORT_BYTES, pause=pause)
            elif self._unimported:
                quiet += self._interval
                if quiet >= self._idle:
                    with self._lock:  # a slice at a time: a new request stops it at the next wake
                        self._import(self._interval)

    def _write_pending(self) -> bool:
        """Under the lock: journal or write what is pending."""
        try:
            if self._journal is not None:
                self._seal_items()
                if self._frames:
                    if self._store is None:
                        self._open()  # the database is made (and migrated) before its first journal
                    before = sum(frame.exchanges for frame in self._frames)
                    try:
                        self._journal.write(self._frames)
                    finally:
                        journaled = before - sum(frame.exchanges for frame in self._frames)
                        self.written += journaled
                        self._backlog += journaled
                        self._unimported = True
            else:
                self._build_rows()
                if self._rows:
                    store = self._store or self._open()
                    store.append(self._rows)
                    self.written += len(self._rows)
                    self._rows = []
            if self._warned:
                log.info("the log is written again (%s)", self.name)
                self._warned = False
            self._report_dropped()  # now, not only at exit: a gateway runs for weeks
        except Exception as exc:  # a log must never take the program down
            self._bound()
            self._failed(exc)
            return False
        return True

    def _bound(self) -> None:
        """After a failed write: keep the newest `max_pending` exchanges for the next try
        and drop the oldest (counted, said once the log is written again). Only after a
        failure: counted before any try, a batch handed over while the writer was held up
        (a long import) was dropped though the journal would have taken it."""
        frames, pending = self._frames, sum(frame.exchanges for frame in self._frames)
        while pending > self._max_pending and frames:
            dropped = frames.pop(0).exchanges
            pending -= dropped
            self._dropped += dropped
        overflow = len(self._rows) - self._max_pending
        if overflow > 0:
            del self._rows[:overflow]
            self._dropped += overflow

    def _give_up(self) -> None:
        """At close, when the last write failed: what is pending is never written. Counted
        as dropped, so that the closing warning says so (the first failure's warning said
        it would be written later, and the later failures' are debug lines)."""
        count = sum(frame.exchanges for frame in self._frames) + len(self._rows)
        self._frames.clear()
        self._rows = []
        for waiting in (self._items, self._ready):
            for _ in range(len(waiting)):
                try:
                    item = waiting.popleft()
                except IndexError:  # taken meanwhile by a caller's add() (`_seal_some`)
                    break
                count += item.exchanges if item.__class__ is _Batch else 1
        self._dropped += count

    def _report_dropped(self) -> None:
        if self._dropped:
            log.warning("the log dropped %d exchange(s) that could not be written (%s)", self._dropped, self.name)
            self._dropped = 0

    def _seal_items(self) -> None:
        """Under the lock: what waits, as framed records for the journal (record.py,
        journal.py). Most was sealed by `add()` (`_seal_some`); the rest is sealed here in
        one batch, and what fails in it is tried alone, logged and dropped."""
        frames, ready, items = self._frames, self._ready, self._items
        # A few passes: while this thread seals, the callers' `add()` keeps moving the rows it
        # leaves to the writer into `ready`; taking them back into a batch keeps them off
        # the one-at-a-time path below (measured: a busy gateway's usage rows all went
        # there, and its p99 paid for it).
        for _ in range(3):
            for _ in range(len(ready)):
                item = ready.popleft()
                (frames if item.__class__ is _Batch else items).append(item)
            if not items:
                break
            self._seal_some(on_writer=True)
        # What failed in a batch: alone. Only what is here now: rows the callers hand over
        # meanwhile wait for the next pass, in a batch.
        breathe = breather(len(ready))
        for _ in range(len(ready)):
            breathe()
            item = ready.popleft()
            if item.__class__ is _Batch:
                frames.append(item)
                continue
            try:
                if item.__class__ is tuple:
                    record = capture(item)
                    if record is not None:
                        frames.append(_batch(seal([record], secrets_of(item[8])), 1))
                else:
                    row = _row(item)
                    if row is not None:
                        frames.append(_batch(seal([(ROW, row._asdict())], ()), 1))
            except Exception as exc:  # one odd exchange must not stop the others
                log.debug("could not log an exchange: %r", exc)

    def _build_rows(self) -> None:
        items = self._items
        secrets: dict[int, tuple[str, ...]] = {}  # per client, for this batch (the items keep them alive)
        breathe = breather(len(items))
        while items:
            breathe()
            item = items.popleft()
            try:
                if item.__class__ is tuple:
                    targets = item[8]
                    known = secrets.get(id(targets))
                    if known is None:
                        known = secrets[id(targets)] = secrets_of(targets)
                    row = build(item, self._continues, known)
                else:
                    row = _row(item)
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

    def _continues(self, thread_hash: bytes) -> tuple[str, str] | None:
        found = self._recent.get(thread_hash)
        if found is not None:
            return found
        try:
            return self._open().continues(thread_hash)
        except Exception:  # the write will fail too, and say why
            return None

    # ---- importing (journal mode) -------------------------------------------------------------

    def _import(self, budget: float | None, **slices: Any) -> None:
        """Under the lock: import the journals of this database (this process's and any
        other's) for up to `budget` seconds (`slices`: catch_up's). A failure loses
        nothing: the records stay in the journals for the next import."""
        try:
            store = _sqlite(self._open())
            before = store.imported_rows
            done = store.catch_up(budget_s=budget, **slices)
        except Exception as exc:
            self._failed(exc, importing=True)
            return
        if done:
            self._unimported = False
            self._backlog = 0
        else:
            self._backlog = max(0, self._backlog - (store.imported_rows - before))

    def _close_journal(self) -> None:
        assert self._journal is not None
        name, imported = self._journal.name, None
        if name is not None and self._store is not None and not self._unimported:
            try:
                imported = _sqlite(self._store).imported_to(name)
            except Exception:  # then it stays for an importer, who deletes it
                imported = None
        try:
            self._journal.close(imported_to=imported)
        except OSError as exc:
            log.debug("could not close the log's journal: %s", exc)

    def _forked(self) -> None:
        """In a fork child: a thread, a lock and a journal of its own; what the parent
        had pending is the parent's to write."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._items.clear()
        self._ready.clear()
        self._frames.clear()
        self._rows = []
        if self._journal is not None:
            self._journal.forget()
        if self._store is not None:
            _inherited.append(self._store)  # the parent's connection: never used nor closed here
            self._store = None
        self._unimported = False
        self._dropped = 0  # the parent's to report: said by each child too, it was counted twice or more

    # ---- failures -----------------------------------------------------------------------------

    def _open(self) -> Store:
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def _failed(self, exc: BaseException, *, importing: bool = False) -> None:
        if self._store is not None and self._owned:
            try:
                self._store.close()
            except Exception:  # closing a broken connection
                pass
            self._store = None  # reopen next time: the file may have been fixed or unlocked
        if self._warned:
            log.debug("log write failed again: %s", _describe(exc))
        elif importing:
            self._warned = True
            log.warning("could not import the log's journal into %s: %s; the exchanges are kept in the journal "
                        "and imported by the next reader of the log", self.name, _describe(exc))
        else:
            self._warned = True
            log.warning("could not write the log (%s): %s; requests go on, and the %d exchange(s) "
                        "will be written when it can be", self.name, _describe(exc),
                        sum(frame.exchanges for frame in self._frames) + len(self._rows))


class _Batch(bytes):
    """A framed record of the journal (a batch of exchanges), and how many it holds."""

    exchanges: int


def _batch(sealed: bytes, exchanges: int) -> _Batch:
    batch = _Batch(journal.frame(sealed))
    batch.exchanges = exchanges
    return batch


def _row(item: Any) -> Exchange | None:
    """A row handed over as it is, or made by its producer's `row()`."""
    if isinstance(item, Exchange):
        return item
    made: Exchange | None = item.row()
    return made


def _sqlite(store: Store) -> SQLiteStore:
    """The store of a journal-mode logbook: always the SQLite one of its path."""
    from .sqlite import SQLiteStore

    if not isinstance(store, SQLiteStore):
        raise TypeError(f"a journal is imported into a SQLite log, not into {store!r}")
    return store


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---- every logbook of the process, for a fork child ----------------------------------------------

_inherited: list[Any] = []  # stores a fork child inherited: kept from being closed
_every: weakref.WeakSet[Logbook] = weakref.WeakSet()  # every logbook, shared or not: reset in a fork child


def _after_fork() -> None:
    for book in list(_every):
        book._forked()


os.register_at_fork(after_in_child=_after_fork)
