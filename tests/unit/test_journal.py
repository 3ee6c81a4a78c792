"""Journals (issue 12, item 5): a process appends its exchanges to a journal of its own
and any reader of the log imports them. Real files, real SQLite, real processes; what is
checked is what several writers and readers at once must never do: lose a row, import
one twice, take a record still being written, or leave a dead process's journal behind."""

from __future__ import annotations

import functools
import logging
import marshal
import os
import sqlite3
import subprocess
import sys
import time
from enum import Enum
from pathlib import Path

import pytest

from human.store import Query, journal, open_store
from human.store.record import ROW, seal
from human.store.writer import Logbook
from tests.unit.test_store import row

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not journal.available, reason="no journals without fcntl (Windows)")


def book_for(db: Path, **options: object) -> Logbook:
    return Logbook(functools.partial(open_store, db), name=str(db), journal_for=db, **options)  # type: ignore[arg-type]


def raw_count(db: Path) -> int:
    """Rows in the table, read without importing anything."""
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM exchanges").fetchone()[0])


def journals(db: Path) -> list[str]:
    return journal.journal_names(db)


def test_exchanges_wait_in_the_journal_until_a_read_imports_them_once(tmp_path):
    db = tmp_path / "logs.db"
    book = book_for(db)
    rows = [row(started_ms=1_796_000_000_000 + i, prompt=f"p{i}") for i in range(10)]
    for r in rows:
        book.add(r)
    assert book.flush()
    (name,) = journals(db)
    assert raw_count(db) == 0  # journaled, not inserted
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    for _ in range(2):  # two readers, one after the other: imported once
        store = open_store(db)
        assert sorted(e.prompt for e in store.exchanges(Query(limit=None))) == sorted(r.prompt for r in rows)
        store.close()
    assert raw_count(db) == 10
    assert journals(db) == [name]  # its writer lives: it stays, imported to its end
    book.close()
    assert journals(db) == [] and raw_count(db) == 10


def test_a_torn_record_waits_while_its_writer_lives_and_is_dropped_once_it_is_dead(tmp_path, caplog):
    db = tmp_path / "logs.db"
    book = book_for(db)
    for i in range(3):
        book.add(row(started_ms=1_796_000_000_000 + i))
    assert book.flush()
    (name,) = journals(db)
    frame = journal.frame(seal([(ROW, row(prompt="late")._asdict())], ()))
    with open(tmp_path / name, "ab") as file:  # a record half written when a reader comes
        file.write(frame[:40])
        file.flush()
        assert len(open_store(db).exchanges(Query(limit=None))) == 3
        file.write(frame[40:])
    assert [e.prompt for e in open_store(db).exchanges(Query(limit=None))].count("late") == 1
    with open(tmp_path / name, "ab") as file:  # then the writer dies mid-record
        file.write(frame[:25])
    book._journal.forget()  # its descriptor closed without a word: as a killed process's is
    with caplog.at_level(logging.WARNING, logger="human.store"):
        assert len(open_store(db).exchanges(Query(limit=None))) == 4
    assert journals(db) == []
    assert any("torn end" in r.getMessage() for r in caplog.records)


KILLED = """
import functools, os, signal, sys
from human.store import open_store
from human.store.writer import Logbook
from tests.unit.test_store import row
db = sys.argv[1]
book = Logbook(functools.partial(open_store, db), journal_for=__import__("pathlib").Path(db))
for i in range(50):
    book.add(row(prompt=f"k{i}"))
book.flush()
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close: the journal is left as it is
"""


def test_a_killed_process_journal_is_imported_and_deleted_by_the_next_reader(tmp_path):
    db = tmp_path / "logs.db"
    done = subprocess.run([sys.executable, "-c", KILLED, str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -9, done.stderr
    assert len(journals(db)) == 1 and raw_count(db) == 0
    store = open_store(db)
    assert len(store.exchanges(Query(limit=None))) == 50
    store.close()
    assert journals(db) == []


WRITER = """
import functools, os, signal, sys, time
from pathlib import Path
from human.store import open_store
from human.store.writer import Logbook
from tests.unit.test_store import row
db, n, count, kill = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "kill"
book = Logbook(functools.partial(open_store, db), journal_for=db, interval=0.01, idle=0.05)
for i in range(count):
    book.add(row(prompt=f"w{n}-{i}"))
    if i % 37 == 0:
        time.sleep(0.01)  # now and then idle: the writer imports too
book.flush()
if kill:
    os.kill(os.getpid(), signal.SIGKILL)
"""

READER = """
import sys, time
from pathlib import Path
from human.store import Query, open_store
db, stop = Path(sys.argv[1]), Path(sys.argv[2])
reads = 0
while not stop.exists():
    store = open_store(db)
    store.exchanges(Query(limit=1))
    store.close()
    reads += 1
print(reads)
"""


def test_writers_and_readers_at_once_lose_no_row_and_import_none_twice(tmp_path):
    """4 writing processes (one killed once its journal is written) and 2 reading ones,
    all importing, on a log none of them found made."""
    db, stop = tmp_path / "logs.db", tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(db), str(stop)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(n), "300", "kill" if n == 0 else "-"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for n in range(4)]
    try:
        for n, proc in enumerate(writers):
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == (-9 if n == 0 else 0), err
            assert "locked" not in err
    finally:
        stop.touch()
    for proc in readers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    store = open_store(db)
    prompts = [e.prompt for e in store.exchanges(Query(limit=None))]
    store.close()
    assert len(prompts) == 1200 and set(prompts) == {f"w{n}-{i}" for n in range(4) for i in range(300)}
    assert journals(db) == []


def test_a_failed_import_loses_nothing_and_the_next_read_takes_it(tmp_path, caplog):
    db = tmp_path / "logs.db"
    book = Logbook(functools.partial(open_store, db, busy_timeout_ms=50), name=str(db), journal_for=db)
    book.add(row(prompt="kept"))
    assert book.flush()
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING, logger="human.store"):
        book.close()  # imports at close: locked
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "could not import" in warnings[0] and "kept in the journal" in warnings[0]
    lock.execute("ROLLBACK")
    lock.close()
    assert len(journals(db)) == 1
    assert [e.prompt for e in open_store(db).exchanges(Query())] == ["kept"]
    assert journals(db) == []


FORK = """
import functools, os, sys
from pathlib import Path
from human.store import open_store
from human.store.writer import Logbook
from tests.unit.test_store import row
db = Path(sys.argv[1])
book = Logbook(functools.partial(open_store, db), journal_for=db, interval=60)
book.add(row(prompt="before"))
book.flush()
book.add(row(prompt="pending"))  # the parent's to write, not the child's too
pid = os.fork()
if pid == 0:
    book.add(row(prompt="child"))
    book.close()
    os._exit(0)
os.waitpid(pid, 0)
book.add(row(prompt="parent"))
book.close()
"""


def test_a_fork_child_writes_a_journal_of_its_own_and_nothing_twice(tmp_path):
    db = tmp_path / "logs.db"
    done = subprocess.run([sys.executable, "-c", FORK, str(db)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(e.prompt for e in open_store(db).exchanges(Query(limit=None))) == [
        "before", "child", "parent", "pending"]
    assert journals(db) == []


def test_a_big_journal_is_rotated_and_imported_in_several_transactions(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "ROTATE_BYTES", 64 << 10)
    monkeypatch.setattr("human.store.sqlite.IMPORT_BYTES", 16 << 10)
    db = tmp_path / "logs.db"
    book = book_for(db, seal_every=8)
    for i in range(600):
        book.add(row(prompt=f"r{i}", answer="x" * 300))
        if i % 50 == 0:
            assert book.flush()
    assert book.flush()
    assert len(journals(db)) > 1  # rotated: the full ones handed over to the importers
    store = open_store(db)
    assert len(store.exchanges(Query(limit=None))) == 600
    store.close()
    book.close()
    assert journals(db) == []


class Role(str, Enum):
    USER = "user"


def test_seal_scrubs_secrets_everywhere_and_takes_what_marshal_cannot():
    secret = "sk-live-0123456789abcdef"
    record = (1, 1.0, None, 0.5, False, "p", "m", "m", [{"role": Role.USER, "content": f"my key {secret}"}],
              {"stop": [secret]}, f"echo {secret}", None, None, None, "stop", None, None, None, 1, None, None)
    blob = seal([record], [secret])
    assert secret.encode() not in blob
    (back,) = marshal.loads(blob)
    assert back[8] == [{"role": "user", "content": "my key [REDACTED]"}]
    assert back[9] == {"stop": ["[REDACTED]"]} and back[10] == "echo [REDACTED]"


def test_retention_prunes_old_exchanges_and_their_conversations(tmp_path):
    db = tmp_path / "logs.db"
    now = int(time.time() * 1000)
    old, new = row(started_ms=now - 3 * 86_400_000, prompt="old"), row(started_ms=now, prompt="new")
    open_store(db).append([old, new])
    store = open_store(db, retention_days=2)
    assert [e.prompt for e in store.exchanges(Query())] == ["new"]
    store.close()
    with sqlite3.connect(db) as con:
        assert [r[0] for r in con.execute("SELECT id FROM conversations")] == [new.id]
    kept = open_store(db, retention_days=5)  # a longer retention deletes nothing
    assert len(kept.exchanges(Query())) == 1


def test_a_log_without_journals_reads_without_a_write(tmp_path):
    """A read of a log nobody journals to takes no write lock (a read-only file reads)."""
    db = tmp_path / "logs.db"
    open_store(db).append([row(prompt="only")])
    os.chmod(db, 0o444)
    try:
        assert [e.prompt for e in open_store(db).exchanges(Query())] == ["only"]
    finally:
        os.chmod(db, 0o644)


class UsageRecord:
    """A producer's own record (as the gateway's): its row is made on the log's thread."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        self.thread = ""

    def row(self):
        import threading

        self.thread = threading.current_thread().name
        return row(prompt=self.prompt)


def test_rows_and_row_makers_are_journaled_and_made_on_the_log_thread(tmp_path):
    db = tmp_path / "logs.db"
    book = book_for(db, seal_every=2)
    makers = [UsageRecord(f"u{i}") for i in range(5)]
    for maker in makers:
        book.add(maker)
    book.add(row(prompt="a row"))
    # add() seals batches on the caller's thread, but never runs a producer's code there
    assert {m.thread for m in makers} <= {"", "human-log-writer"}
    assert book.flush()
    book.close()
    assert sorted(e.prompt for e in open_store(db).exchanges(Query(limit=None))) == [
        "a row", "u0", "u1", "u2", "u3", "u4"]


def test_without_journals_the_logbook_writes_rows_itself(tmp_path, monkeypatch):
    """As on a platform without fcntl (Windows)."""
    monkeypatch.setattr(journal, "available", False)
    db = tmp_path / "logs.db"
    book = book_for(db)
    book.add(row(prompt="direct"))
    assert book.flush()
    assert raw_count(db) == 1 and journals(db) == []
    book.close()


class _Producer:
    """A `RowMaker` whose `row()` runs while requests keep arriving: each call adds more
    makers through `add()`, as an event loop does while the writer thread works."""

    def __init__(self, book: Logbook, number: int, spawn: list[int]) -> None:
        self.book, self.number, self.spawn = book, number, spawn

    def row(self):
        if self.spawn and self.spawn[0] > 0:
            for _ in range(40):  # more than seal_every: add() hands them over to the writer
                self.spawn[0] -= 1
                self.book.add(_Producer(self.book, 1000 + self.spawn[0], self.spawn))
        return row(started_ms=1_796_000_000_000 + self.number, prompt=f"p{self.number}")


def test_rows_handed_over_while_the_writer_seals_are_batched_not_written_one_at_a_time(tmp_path):
    """A busy gateway's usage rows arrive while the writer turns the last ones into records;
    they must go into the journal in batches. One at a time, they cost the writer so much
    more Python that the event loop beside it waited (p99 12 ms at one request in flight)."""
    db = tmp_path / "logs.db"
    book = book_for(db, interval=3600)
    spawn = [200]
    book.add(row(started_ms=1_796_000_000_000, prompt="first"))  # starts the (sleeping) writer thread
    for number in range(100):
        book._items.append(_Producer(book, number, spawn))
    with book._lock:
        book._seal_items()
        frames = list(book._frames)
    exchanges = sum(frame.exchanges for frame in frames)
    singles = sum(1 for frame in frames if frame.exchanges == 1)
    assert exchanges + len(book._ready) + len(book._items) == 301  # nothing lost
    assert singles <= 1 and len(frames) <= 6, [frame.exchanges for frame in frames]
    assert book.flush()
    book.close()
    store = open_store(db)
    assert len(store.exchanges(Query(limit=None))) == 301
    store.close()


def test_the_writer_pauses_for_the_event_loop_only_while_it_keeps_up(tmp_path, monkeypatch):
    """Pauses let an event loop beside the writer run (the gateway's p99), but each costs
    the writer a GIL switch: with a backlog it must work flat out, or rows pile up."""
    from human.store import pacing

    pauses: list[float] = []
    monkeypatch.setattr(pacing.time, "sleep", pauses.append)
    for waiting, paused in ((100, True), (pacing.BREATHE_BELOW + 100, False)):
        pauses.clear()
        book = book_for(tmp_path / f"logs{waiting}.db", interval=3600)
        book.add(row(started_ms=1_796_000_000_000, prompt="first"))  # starts the (sleeping) writer thread
        for number in range(waiting):
            book._items.append(_Producer(book, number, []))
        with book._lock:
            book._seal_items()
        assert sum(frame.exchanges for frame in book._frames) == waiting + 1
        assert bool(pauses) is paused, (waiting, len(pauses))
        monkeypatch.undo()
        book.close()
        monkeypatch.setattr(pacing.time, "sleep", pauses.append)


def test_a_writer_that_is_never_idle_still_imports_and_its_backlog_stays_bounded(tmp_path):
    """Constant traffic (no idle moment, no reader): past the backlog limit the writer
    imports in small slices while it goes on journaling, so the journal never holds more
    than about the limit, and every row is imported exactly once."""
    db = tmp_path / "logs.db"
    book = book_for(db, interval=0.01, idle=3600, backlog_limit=200)
    added, peak, started = 0, 0, time.monotonic()
    while time.monotonic() - started < 3:
        for _ in range(20):
            book.add(row(started_ms=1_796_000_000_000 + added, prompt=f"p{added}"))
            added += 1
        time.sleep(0.005)
        if db.exists() and book.written:  # the database is made before the first journal
            peak = max(peak, added - raw_count(db))
    imported_while_busy = raw_count(db)
    assert imported_while_busy > added // 2  # not left for the exit or a reader
    assert peak < 200 + 2_000  # the limit, plus what arrives while a slice runs (generously)
    book.close()
    assert raw_count(db) == added  # nothing lost, nothing twice
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(DISTINCT prompt) FROM exchanges").fetchone()[0] == added


@pytest.mark.parametrize("max_bytes", [1, 2, 7, 8, 9, 100, 1000])
def test_an_import_slice_smaller_than_a_record_takes_one_record_and_never_drops_a_journal(tmp_path, max_bytes):
    """A transaction's budget is shared by the journals it reads: what the first one leaves
    can be a few bytes. Reading a dead journal with less than a record's header once looked
    like a torn end at its start, and the whole journal was deleted unread (the gateway lost
    ~14 % of its usage rows at 5,000 requests a second)."""
    db = tmp_path / "logs.db"
    written = 0
    for writer in range(3):  # three dead writers' journals (rotated or closed without an import)
        book = book_for(db, seal_every=4)
        for i in range(40):
            book.add(row(prompt=f"w{writer}-{i}", answer="x" * 50))
            written += 1
            if i % 9 == 0:
                assert book.flush()
        assert book.flush()
        assert book._journal is not None
        book._journal.close()  # stops writing, imports nothing: as a writer killed after its last write
    assert len(journals(db)) == 3
    found = journal.scan(tmp_path, journals(db)[0], 0, max_bytes)
    assert found is not None and found.records and found.more and not found.finished
    if found.fd is not None:
        os.close(found.fd)
    store = open_store(db)
    slices = 0
    while not store.catch_up(budget_s=None, max_bytes=max_bytes):
        slices += 1
    assert raw_count(db) == written and journals(db) == []
    store.close()


def test_a_database_reached_by_a_symlink_has_its_journals_imported_once(tmp_path):
    """Processes may name one database by different paths (a symlink). An import forgets
    the offsets of the journals it does not list, taking them for deleted: journals put
    beside the link, not the file, were left out of the other's listing, their offsets
    forgotten, and imported again from their start."""
    real, alias = tmp_path / "real" / "logs.db", tmp_path / "alias" / "logs.db"
    real.parent.mkdir()
    alias.parent.mkdir()
    open_store(real).close()
    alias.symlink_to(real)
    by_link, by_file = book_for(alias), book_for(real)
    by_link.add(row(prompt="first"))
    assert by_link.flush()
    by_link._import(None)  # imported while idle: its journal has an offset now
    by_file.add(row(prompt="other"))
    assert by_file.flush()
    reader = open_store(real)
    assert reader.catch_up()  # a reader by the file's own path
    reader.close()
    by_link.add(row(prompt="second"))
    assert by_link.flush()
    by_link.close()
    by_file.close()
    with sqlite3.connect(real) as con:
        prompts = sorted(r[0] for r in con.execute("SELECT prompt FROM exchanges"))
    assert prompts == ["first", "other", "second"]
    assert journals(real) == [] and journals(alias) == []


class Unwritable:
    """A database that cannot be opened (a full disk, a read-only folder) until `fixed`."""

    def __init__(self, db: Path) -> None:
        self.db, self.fixed = db, False

    def __call__(self):
        if not self.fixed:
            raise OSError(28, "No space left on device")
        return open_store(self.db)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_more_exchanges_than_max_pending_at_once_are_written_not_dropped(tmp_path, caplog):
    """`max_pending` bounds what a failing log keeps for its next try. Exchanges handed over
    between two writes were once counted against it before any write was tried: a writer
    held up (a long import under a locked database) dropped a whole batch it could have
    journaled, and said it "could not be written"."""
    db = tmp_path / "logs.db"
    book = Logbook(functools.partial(open_store, db), name=str(db), journal_for=db, max_pending=5, interval=3600)
    with caplog.at_level(logging.WARNING, logger="human.store"):
        for i in range(12):
            book.add(row(prompt=f"p{i}"))
        assert book.flush()
        book.close()
    assert raw_count(db) == 12 and warnings_of(caplog) == []


def test_exchanges_dropped_while_the_log_failed_are_reported_when_it_recovers(tmp_path, caplog):
    """Past `max_pending` while writes fail, the oldest exchanges are dropped: a
    long-running process (the gateway) must hear of it when the log works again, not
    only when it exits."""
    db = tmp_path / "logs.db"
    opener = Unwritable(db)
    book = Logbook(opener, name=str(db), journal_for=db, max_pending=5, interval=3600)
    with caplog.at_level(logging.WARNING, logger="human.store"):
        for i in range(12):
            book.add(row(prompt=f"p{i}"))
            assert not book.flush()
        opener.fixed = True
        assert book.flush()
        assert any("dropped 7 exchange" in message for message in warnings_of(caplog)), warnings_of(caplog)
        caplog.clear()
        book.close()
    assert not any("dropped" in message for message in warnings_of(caplog))  # said once
    kept = sorted(e.prompt for e in open_store(db).exchanges(Query(limit=None)))
    assert kept == sorted(f"p{i}" for i in range(7, 12))  # the newest


def test_exchanges_a_failing_log_cannot_write_when_it_closes_are_reported_lost(tmp_path, caplog):
    """At close, what cannot be written is lost: the warning of the first failure said it
    would be written later, and later failures are only debug lines."""
    db = tmp_path / "logs.db"
    book = Logbook(Unwritable(db), name=str(db), journal_for=db, interval=3600)
    with caplog.at_level(logging.WARNING, logger="human.store"):
        book.add(row(prompt="a"))
        assert not book.flush()  # the first failure: a warning
        for i in range(4):
            book.add(row(prompt=f"b{i}"))
        book.close()  # fails again: nothing is written, ever
    assert any("dropped 5 exchange" in message for message in warnings_of(caplog)), warnings_of(caplog)


def test_a_journal_it_may_not_read_does_not_hold_up_the_others(tmp_path, monkeypatch, caplog):
    """A journal another user left (a `sudo human` killed before it imported its own; made
    0600) cannot be opened: the import skips it, as scan() says, instead of failing whole,
    on every read, with every other journal waiting behind it."""
    db = tmp_path / "logs.db"
    names = []
    for who in ("root", "me"):
        book = book_for(db)
        book.add(row(prompt=who))
        assert book.flush()
        assert book._journal is not None
        names.append(book._journal.name)
        book._journal.close()  # its writer gone, nothing imported
    opened = os.open

    def open_as_me(path, *args, **kwargs):
        if Path(path).name == names[0]:
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(journal.os, "open", open_as_me)
    store = open_store(db)
    with caplog.at_level(logging.WARNING, logger="human.store"):
        assert store.catch_up()
    store.close()
    assert raw_count(db) == 1 and journals(db) == [names[0]]  # left for one who can read it
    assert any("cannot read" in message for message in warnings_of(caplog))


def test_a_fork_child_does_not_report_the_exchanges_its_parent_dropped(tmp_path, caplog):
    """The parent's drops are the parent's to report: a child that said them too (at its
    first write) doubled the count a reader of the logs adds up."""
    db = tmp_path / "logs.db"
    opener = Unwritable(db)
    book = Logbook(opener, name=str(db), journal_for=db, max_pending=1, interval=3600)
    for i in range(3):
        book.add(row(prompt=f"p{i}"))
        assert not book.flush()  # two dropped
    book._forked()  # as os.fork() has it run in the child
    opener.fixed = True
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="human.store"):
        book.add(row(prompt="child"))
        assert book.flush()
        book.close()
    assert not any("dropped" in message for message in warnings_of(caplog)), warnings_of(caplog)
    assert [e.prompt for e in open_store(db).exchanges(Query(limit=None))] == ["child"]


def test_an_exchange_imported_twice_is_kept_once_and_holds_up_no_later_import(tmp_path):
    """An exchange's id is its identity: met again (its journal's offset lost), it is the
    same row. A plain INSERT failed the import's transaction on the UNIQUE id, and so every
    import after it: no journal of that database was read again."""
    db = tmp_path / "logs.db"
    twice = row(prompt="twice")
    first = book_for(db)
    first.add(twice)
    assert first.flush()
    first.close()  # imported, its journal deleted
    second = book_for(db)
    second.add(twice)  # the same exchange, journaled again
    second.add(row(prompt="after"))
    assert second.flush()
    assert second._journal is not None
    second._journal.close()
    store = open_store(db)
    assert sorted(e.prompt for e in store.exchanges(Query(limit=None))) == ["after", "twice"]
    store.close()
    assert journals(db) == []


def test_a_damaged_record_length_is_never_read_as_it_says(tmp_path, monkeypatch, caplog):
    """A record head whose length is damaged (4 GiB) in a dead writer's journal: read no
    further than the file holds (it was an allocation of the claimed size, and a failed
    import every time), and the journal's whole records before it are imported."""
    db = tmp_path / "logs.db"
    book = book_for(db)
    book.add(row(prompt="whole"))
    assert book.flush()
    assert book._journal is not None
    name = book._journal.name
    book._journal.close()
    with open(tmp_path / name, "ab") as out:
        out.write(journal._HEAD.pack(0xFFFFFFF0, 0) + b"x" * 100)  # a head claiming 4 GiB, then little
    size = (tmp_path / name).stat().st_size
    pread = os.pread

    def bounded(fd, n, offset):
        assert n <= max(size, 1 << 20), f"asked to read {n} bytes of a {size}-byte journal"
        return pread(fd, n, offset)

    monkeypatch.setattr(journal.os, "pread", bounded)
    first = journal.scan(tmp_path, name, 0, 1 << 20)
    assert first is not None and len(first.records) == 1
    if first.fd is not None:
        os.close(first.fd)
    for max_bytes in (1, 64, 1 << 20):  # the damaged head first at the offset a next import starts from
        found = journal.scan(tmp_path, name, first.end, max_bytes)
        assert found is not None and found.records == [] and found.finished
        if found.fd is not None:
            os.close(found.fd)
    store = open_store(db)
    with caplog.at_level(logging.WARNING, logger="human.store"):
        assert store.catch_up()
    assert [e.prompt for e in store.exchanges(Query(limit=None))] == ["whole"]
    store.close()
    assert journals(db) == [] and any("torn end" in r.getMessage() for r in caplog.records)
