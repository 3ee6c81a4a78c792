"""The gateway's keys in its PostgreSQL (`"keys_store": "database"`, with `database_url`):
for several gateway machines, which then see a key created or revoked on any of them
within a second or two, with no shared file.

The keys are one document (`documents` table, `store/postgres.py`), the same JSON as the
keys file (hashes, never secrets), read and replaced whole under the row's lock, so two
machines creating keys at once take turns and lose nothing; its version is what a running
gateway polls each second (one indexed integer). A database that cannot be reached while
the gateway runs leaves it with the keys it has (the watcher warns); at start, or for a
`keys` command, it is an error that says which database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ..errors import ConfigError
from .keys import GatewayKey, KeyStore, keys_from_json, keys_to_json

if TYPE_CHECKING:
    from ..store.postgres import PostgresStore

__all__ = ["DatabaseKeys"]

DOCUMENT = "gateway_keys"
T = TypeVar("T")


class DatabaseKeys(KeyStore):
    def __init__(self, url: str) -> None:
        from ..store.postgres import PostgresStore

        self.url = url
        self.where = PostgresStore.describe(url)
        self._store: PostgresStore | None = PostgresStore(url)  # ConfigError when unreachable; migrated
        self._in_change = False  # inside one locked transaction: a broken connection is not retried

    def stamp(self) -> int | None:
        return self._call(lambda store: store.document_version(DOCUMENT))

    def load(self) -> list[GatewayKey]:
        found = self._call(lambda store: store.document(DOCUMENT))
        if found is None or not found[1]:
            return []
        try:
            return keys_from_json(json.loads(found[1]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"the gateway keys in {self.where} are not valid (was the row edited by hand?); "
                              f"delete the '{DOCUMENT}' row of the documents table and create the keys again") from None

    def _save(self, keys: list[GatewayKey]) -> None:
        self._call(lambda store: store.put_document(DOCUMENT, json.dumps(keys_to_json(keys))))

    @contextmanager
    def _changing(self) -> Iterator[None]:
        import psycopg

        store = self._call(lambda store: store)
        try:
            with store.changing(DOCUMENT):
                self._in_change = True
                yield
        except psycopg.Error as exc:
            self.close()
            raise ConfigError(f"cannot change the gateway keys in {self.where}: {type(exc).__name__}") from None
        finally:
            self._in_change = False

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _call(self, step: Callable[[PostgresStore], T]) -> T:
        """Run a step; on a broken connection, once more on a new one."""
        import psycopg

        from ..store.postgres import PostgresStore

        for again in (True, False):
            try:
                if self._store is None:
                    self._store = PostgresStore(self.url)
                return step(self._store)
            except psycopg.Error as exc:
                self.close()
                if not again or self._in_change or not isinstance(exc, psycopg.OperationalError):
                    raise ConfigError(f"cannot read or write the gateway keys in {self.where}: "
                                      f"{type(exc).__name__}") from None
        raise AssertionError("unreachable")

