"""One logbook per database for the whole process (`logbook_for`): every client that
names a path, and every client given the same `Store` object, shares one writer thread
and one journal; each is closed at interpreter exit (its journal imported within its
budget) or flushed (a store the caller gave is the caller's to close)."""

from __future__ import annotations

import atexit
import functools
import os
import threading
from pathlib import Path
from typing import Any

from . import Store
from .writer import Logbook

__all__ = ["logbook_for"]

_books: dict[str, Logbook] = {}
_books_lock = threading.Lock()


def logbook_for(target: Any, env: Any = None, *, retention_days: float | None = None) -> Logbook:
    """The process's logbook for a database: a path (made on first use, shared by every
    client that names it; journal mode) or a `Store` object (shared by the clients given
    that object). `retention_days` applies to a path's database (the first client's)."""
    from . import open_store

    given = hasattr(target, "append")
    key = f"store:{id(target)}" if given else str(target)
    with _books_lock:
        book = _books.get(key)
        if book is None or book._closed:
            if given:
                book = Logbook(functools.partial(_itself, target), name=repr(target), owned=False)
            else:
                book = Logbook(functools.partial(open_store, target, env=env, retention_days=retention_days),
                               name=key, journal_for=Path(target))
            _books[key] = book
        return book


def _itself(store: Store) -> Store:
    return store


@atexit.register
def _close_all() -> None:
    for book in list(_books.values()):
        try:
            if book._journal is not None:
                book.close()  # the journal imported (within its budget) and deleted
            else:
                book.flush()  # a store the caller gave: theirs to close
        except Exception:  # exiting anyway
            pass


def _after_fork() -> None:
    global _books_lock
    _books_lock = threading.Lock()  # a fork child's: another thread may have held the parent's


os.register_at_fork(after_in_child=_after_fork)
