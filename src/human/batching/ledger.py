"""The output file of a batch run: the record of what is done, and the only state a
resumed run needs.

- **Append-only, one write per line.** A finished request is one `os.write` of one whole
  line on a file opened with O_APPEND, so a process killed at any moment leaves every
  earlier line intact and at most the last one torn (the operating system keeps what was
  written even when the process is SIGKILLed). `fsync` runs about once a second and at the
  end, for power loss (pnthn-ai/polar_llama#75 and miclaldogan/bantzv2#511 are runs that
  paid twice for lack of exactly this).
- **Repaired on open.** A last line without its newline is a torn write: it is cut off
  (and said so), and its request is sent again.
- **Locked.** One run at a time per output file (`flock`, released by the kernel when a
  process dies, so a killed run never leaves a stale lock).
- **Read once.** Opening reads every line into `done` (custom_id -> what its line says);
  lines appended later only update the totals.
  With `--retry-failed` the failure lines are dropped first by rewriting the file (to a
  temporary file, then an atomic rename), so the output holds one line per custom_id.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BatchInputError
from .lines import Done, LineError, parse_output

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock, the rest works
    fcntl = None  # type: ignore[assignment]

__all__ = ["Ledger"]

SYNC_EVERY_S = 1.0
_FLAGS = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Totals:
    """Sums over the lines of the output file."""

    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0  # successes without a known price

    def add(self, done: Done) -> None:
        if done.ok:
            self.succeeded += 1
            if done.cost is None:
                self.unpriced += 1
        else:
            self.failed += 1
        self.prompt_tokens += done.prompt_tokens
        self.completion_tokens += done.completion_tokens
        self.cost += done.cost or 0.0

    def remove(self, done: Done) -> None:
        if done.ok:
            self.succeeded -= 1
            if done.cost is None:
                self.unpriced -= 1
        else:
            self.failed -= 1
        self.prompt_tokens -= done.prompt_tokens
        self.completion_tokens -= done.completion_tokens
        self.cost -= done.cost or 0.0


@dataclass
class Ledger:
    path: Path
    fd: int
    done: dict[str, Done] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    repaired: int = 0  # bytes of a torn last line that were cut off
    created: bool = False  # this run created the file
    _dirty: bool = False
    _synced_at: float = 0.0

    @classmethod
    def open(cls, path: str | Path, *, write: bool = True) -> Ledger:
        """Open (or create) and lock the output file, repair a torn last line, read it.
        With `write` false (a dry run) nothing is created, locked or repaired."""
        path = Path(path)
        if not write:
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                return cls(path, -1)
        else:
            existed = path.exists()
            fd = os.open(path, _FLAGS | os.O_CREAT, 0o644)
            if not _lock(fd):
                os.close(fd)
                raise BatchInputError(f"{path} is being written by another `human batch` run; wait for it to end "
                                      "or choose another output file", path=str(path))
        ledger = cls(path, fd, created=write and not existed)
        try:
            ledger._read(repair=write)
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _read(self, repair: bool) -> None:
        end = 0  # offset just past the last complete line
        number = 0
        with open(self.fd, "rb", closefd=False) as file:
            file.seek(0)
            for raw in file:
                if not raw.endswith(b"\n"):
                    break  # torn: cut below
                number += 1
                end += len(raw)
                if not raw.strip():
                    continue
                try:
                    done = parse_output(raw)
                except LineError as exc:
                    raise BatchInputError(
                        f"{self.path} line {number} {exc}: it does not look like the output of a batch run; "
                        "choose another output file", path=str(self.path), problems=((number, str(exc)),),
                    ) from None
                self._keep(done)
            size = file.seek(0, os.SEEK_END)
        if size > end and repair:
            os.ftruncate(self.fd, end)
            os.fsync(self.fd)
            self.repaired = size - end

    def _keep(self, done: Done) -> None:
        """One line per custom_id counts: a success wins over a failure, else the latest."""
        old = self.done.get(done.custom_id)
        if old is not None:
            if old.ok and not done.ok:
                return
            self.totals.remove(old)
        self.done[done.custom_id] = done
        self.totals.add(done)

    def drop_failures(self) -> int:
        """Rewrite the file without its failure lines (for --retry-failed). Returns how many."""
        failed = [done for done in self.done.values() if not done.ok]
        if not failed:
            return 0
        directory = self.path.parent
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        fd = -1
        try:
            with open(self.fd, "rb", closefd=False) as source, os.fdopen(handle, "wb") as target:
                source.seek(0)
                for raw in source:
                    if raw.strip() and parse_output(raw).ok:
                        target.write(raw)
                target.flush()
                os.fsync(target.fileno())
            os.chmod(temporary, os.stat(self.fd).st_mode & 0o777)
            # Locked before it takes the name, so no other run can slip in between.
            fd = os.open(temporary, _FLAGS)
            _lock(fd)
            os.replace(temporary, self.path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_directory(directory)
        os.close(self.fd)
        self.fd = fd
        for done in failed:
            del self.done[done.custom_id]
            self.totals.remove(done)
        return len(failed)

    def append(self, line: bytes, done: Done) -> None:
        """One whole line, in one write (looped only if the system writes part of it).
        Only the totals learn of it: `done` describes the file as it was opened (each id
        is sent once a run), so memory does not grow with the lines a run writes."""
        view = memoryview(line)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self._dirty = True
        self.totals.add(done)

    def sync_due(self, now: float) -> bool:
        return self._dirty and now - self._synced_at >= SYNC_EVERY_S

    def sync(self, now: float) -> None:
        """fsync what was appended (callable from a worker thread)."""
        self._dirty = False
        self._synced_at = now
        os.fsync(self.fd)

    def write_failures(self, path: str | Path) -> int:
        """Write the failure lines of the output to `path` (replaced whole). Returns how many."""
        path = Path(path)
        count = 0
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with open(self.fd, "rb", closefd=False) as source, os.fdopen(handle, "wb") as target:
                source.seek(0)
                for raw in source:
                    if raw.endswith(b"\n") and raw.strip() and not parse_output(raw).ok:
                        target.write(raw)
                        count += 1
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return count

    def discard(self) -> None:
        """Remove the file again if this run created it and wrote nothing (the run was
        refused before sending: no empty output is left behind)."""
        if self.created and self.fd >= 0 and os.fstat(self.fd).st_size == 0:
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.fd >= 0:
            if self._dirty:
                os.fsync(self.fd)
                self._dirty = False
            os.close(self.fd)  # also releases the lock
            self.fd = -1


def _lock(fd: int) -> bool:
    """An exclusive advisory lock on the open file; False if another process holds one."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _sync_directory(directory: Path) -> None:
    """Make a rename durable: fsync the directory that holds it (POSIX rename(2))."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
