"""Journals: where a process puts its finished exchanges until they become rows.

Building a row and inserting it into SQLite costs ~75 µs, a third of a request's own CPU;
the log's budget is 15 % (issue 12, item 5). So a process that logs only appends each
exchange, captured and sealed (record.py: plain values, secrets scrubbed, ~10 µs), to a
journal file of its own beside the database, and the rows are built and inserted later by
whoever imports the journals: a reader of the log (every `SQLiteStore` read), or the
writer itself when it is idle and when it closes (writer.py).

    logs.db.<pid>-<random>.journal    one per process and database, 0600, in the log's
                                      0700 directory; "human-journal 1\\n", then records

A frame is `<length u32 LE><crc32 u32 LE><marshal bytes>`, the bytes a list of records
(record.py; a batch of up to 32 exchanges, sealed together). Several processes
may write and import at once; what keeps that safe:
- The writer holds an exclusive `flock` on its journal for as long as it writes to it:
  an importer that can take the lock knows the writer is gone (the kernel drops a dead
  process's locks). A journal is made under a temporary name, locked, then renamed, so
  no importer ever sees a journal that is not locked by its writer.
- Only whole records are imported; a record still being written (short, or failing its
  CRC) is left for a later import while its writer lives, and dropped once it is dead.
- How far each journal has been imported is kept in the database (`journal_offsets`), in
  the same transaction as the rows, under SQLite's write lock: a record is imported once.
- A journal is deleted only once it is wholly imported and no one writes to it: by its
  writer when it closes or rotates it, or by an importer that holds its lock.
A fork child gets a journal of its own (the parent's stays the parent's).

On a platform without `fcntl` (Windows) there are no journals: the writer builds and
inserts the rows itself, as a logbook writing to any `Store` object does.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # Windows: no journals (see the module docstring)
    fcntl = None  # type: ignore[assignment]

__all__ = ["MAGIC", "Journal", "Scan", "available", "frame", "journal_names", "located", "scan"]

log = logging.getLogger("human.store")

available = fcntl is not None
MAGIC = b"human-journal 1\n"
SUFFIX = ".journal"
ROTATE_BYTES = 8 << 20  # a journal this big is handed over to the importers and a new one begun
_HEAD = struct.Struct("<II")
B = TypeVar("B", bound=bytes)


def frame(blob: bytes) -> bytes:
    """One record as it is written: its length, its CRC-32, its bytes."""
    return _HEAD.pack(len(blob), zlib.crc32(blob)) + blob


def located(db_path: Path) -> Path:
    """The database file itself, symlinks resolved: its journals are put and looked for
    beside it, so that every process lists the same journals whatever path it names the
    database by. An import forgets the offsets of the journals it does not list (it takes
    them for deleted): journals beside a link, left out of a listing beside the file, had
    their offsets forgotten and were imported again from their start."""
    return Path(os.path.realpath(db_path))


def journal_names(db_path: Path) -> list[str]:
    """The journals of a database, oldest writer first (by name, then it does not matter)."""
    prefix = db_path.name + "."
    try:
        with os.scandir(db_path.parent) as entries:
            return sorted(entry.name for entry in entries
                          if entry.name.startswith(prefix) and entry.name.endswith(SUFFIX))
    except FileNotFoundError:
        return []


class Journal:
    """This process's journal for one database (the writer's side). Used by one thread at
    a time (the logbook's lock)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = located(db_path)
        self.name: str | None = None  # of the open journal
        self.size = 0  # bytes written to it, the header included
        self._fd: int | None = None
        self._pid = 0

    def __repr__(self) -> str:
        return f"Journal({str(self.db_path.parent / (self.name or '?'))!r}, size={self.size})"

    def write(self, frames: list[B]) -> None:
        """Append the framed records, then empty the list. On an error (a full disk), the
        records written whole are taken off the list, the rest stay on it for the next
        try, and this journal is given up (its torn end is skipped by the importers once
        it is unlocked): OSError is raised."""
        if not frames:
            return
        if self._fd is None or self._pid != os.getpid():
            self._open()
        fd = self._fd
        assert fd is not None
        data = b"".join(frames)
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:] if done else data)
        except OSError:
            whole, end = 0, 0
            for item in frames:
                if end + len(item) > done:
                    break
                end += len(item)
                whole += 1
            del frames[:whole]
            self.size += done
            self.close()
            raise
        self.size += done
        frames.clear()
        if self.size >= ROTATE_BYTES:
            self.close()

    def close(self, *, imported_to: int | None = None) -> None:
        """Stop writing to this journal: release its lock. `imported_to` (the offset the
        database has for it) says whether it is wholly imported; then it is deleted first,
        before anyone could take it for a dead writer's."""
        fd, name = self._fd, self.name
        self._fd, self.name, self.size = None, None, 0
        if fd is None or name is None:
            return
        if self._pid != os.getpid():
            os.close(fd)  # a fork child's copy: the lock stays the parent's
            return
        try:
            if imported_to is not None and imported_to >= os.fstat(fd).st_size:
                (self.db_path.parent / name).unlink(missing_ok=True)
        finally:
            os.close(fd)

    def forget(self) -> None:
        """In a fork child: the parent's journal is not ours to write or close."""
        fd = self._fd
        self._fd, self.name, self.size = None, None, 0
        if fd is not None:
            try:
                os.close(fd)  # the parent still holds the lock through its own descriptor
            except OSError:
                pass

    def _open(self) -> None:
        if self._fd is not None:
            self.forget()  # inherited across fork()
        assert fcntl is not None
        folder = self.db_path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        pid = os.getpid()
        name = f"{self.db_path.name}.{pid}-{os.urandom(5).hex()}{SUFFIX}"
        temporary = folder / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, MAGIC)
            os.rename(temporary, folder / name)  # locked before any importer can see it
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        self._fd, self.name, self.size, self._pid = fd, name, len(MAGIC), pid


@dataclass
class Scan:
    """What one journal holds past an offset: whole records, with the offset after each."""

    name: str
    alive: bool  # its writer still holds it
    records: list[tuple[Any, int]] = field(default_factory=list)  # (record, offset after it)
    end: int = 0  # the offset after the last whole record read
    more: bool = False  # stopped at max_bytes: there may be more past `end`
    finished: bool = False  # dead and read to its end: delete it once the import commits
    fd: int | None = None  # held (with its lock) until then

    def release(self, folder: Path, committed: bool) -> None:
        if committed and self.finished:
            (folder / self.name).unlink(missing_ok=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def scan(folder: Path, name: str, offset: int, max_bytes: int) -> Scan | None:
    """The whole records of journal `name` from `offset` (about `max_bytes` of them at
    most, one at least); None when it is gone, not ours to read, or unreadable. Call
    under the database's write lock."""
    import marshal

    assert fcntl is not None
    try:
        fd = os.open(folder / name, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        # another user's (a `sudo human` killed before it imported its own, 0600): its records
        # wait for someone who may read them; raised, it failed the whole import, every time,
        # and every other journal waited behind it
        log.warning("cannot read the log journal %s (%s); it is left as it is", folder / name, exc.strerror)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        alive = False
    except OSError:
        alive = True
    try:
        if os.pread(fd, len(MAGIC), 0) != MAGIC:
            if not alive or offset == 0:
                log.warning("the log journal %s is not one this version reads; it is left as it is", folder / name)
            os.close(fd)
            return None
        found = Scan(name, alive, fd=None if alive else fd)
        start = max(offset, len(MAGIC))
        # at least a record's head, so that at least one whole record is read: the few bytes
        # a transaction's budget can leave for its next journal once read as a torn end at
        # its start, and a dead writer's journal was deleted unread
        want = max(max_bytes, _HEAD.size)
        data = os.pread(fd, want, start)
        if len(data) == want and len(data) >= _HEAD.size:  # one record bigger than max_bytes: read it whole
            length = _HEAD.unpack_from(data)[0]
            if _HEAD.size + length > want:
                # no more than the file holds: a damaged head's length (up to 4 GiB) read as
                # it says was an allocation that size, and a MemoryError failed every import
                want = min(_HEAD.size + length, max(os.fstat(fd).st_size - start, want))
                data = os.pread(fd, want, start)
        pos = 0
        for blob, after in _records(data):
            try:
                record = marshal.loads(blob)
            except (ValueError, EOFError, TypeError):
                break  # passed its CRC, yet unreadable: treated as a torn end
            # a frame holds a batch (a list of records); each record's offset is the frame's end
            for one in record if isinstance(record, list) else (record,):
                found.records.append((one, start + after))
            pos = after
        found.end = start + pos
        found.more = len(data) == want and pos > 0  # no progress at all: a damaged record, not "more"
        if not alive and not found.more:  # a dead writer's journal, read to its end
            found.finished = True
            if pos < len(data):
                log.warning("dropped the torn end (%d bytes) of the log journal %s: its writer stopped while "
                            "writing it", len(data) - pos, folder / name)
    except BaseException:
        os.close(fd)
        raise
    if alive:
        os.close(fd)
    return found


def _records(data: bytes) -> Iterator[tuple[bytes, int]]:
    """(record bytes, offset after it) for each whole record at the start of `data`."""
    pos, size, head = 0, len(data), _HEAD.size
    while pos + head <= size:
        length, crc = _HEAD.unpack_from(data, pos)
        end = pos + head + length
        if end > size:
            return  # not all written yet
        blob = data[pos + head:end]
        if zlib.crc32(blob) != crc:
            return  # written in part (a crash mid-write, or read while being written)
        yield blob, end
        pos = end
