"""The gateway's own keys: what callers present instead of a provider key.

    hgw-<id>-<secret>         e.g. hgw-3f9a1c0b7d2e-Qm9...  (12 hex id, 43-character secret)

The id is public (it names the key in `keys list`, in usage rows and in Redis); the
secret is 256 random bits and is never stored: the keys file holds its SHA-256 (a fast
hash is right for a random 256-bit secret; a slow KDF protects guessable passwords), and
a presented key is checked by recomputing the hash and comparing with
`hmac.compare_digest`, whose time does not depend on where the digests differ.

Where keys live (`gateway.keys_store`):
- `"file"` (the default): the keys file (`gateway.keys_file`, default
  `~/.human/state/gateway-keys.json`), JSON, written atomically, mode 0600;
- `"database"`: a table in the gateway's PostgreSQL (`gateway.database_url`; `dbkeys.py`),
  for several machines: a key created or revoked on one is seen by all of them.
Either way a running gateway looks for a change every second, so `human gateway keys
revoke` takes effect within a second or two without a restart; the usage rows and the
Redis counters name keys by id only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["PREFIX", "GatewayKey", "KeyFile", "KeyStore", "Keyring", "digest"]

PREFIX = "hgw-"
_ID_CHARS = 12
_PERIODS = ("total", "day", "month")


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """One key as stored (never its secret). None for a limit means none."""

    id: str
    name: str
    digest: str  # SHA-256 of the secret, hex
    created: str  # ISO 8601, UTC
    models: tuple[str, ...] | None = None  # ids this key may call; None: every routed id
    rpm: int | None = None
    tpm: int | None = None
    budget: float | None = None  # USD per budget_period
    budget_period: str = "total"
    revoked: str | None = None  # ISO 8601, UTC, when revoked

    @property
    def shown(self) -> str:
        """How the key is shown: its id, never its secret."""
        return f"{PREFIX}{self.id}-…"

    def may_use(self, model_id: str) -> bool:
        return self.models is None or model_id in self.models

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models) if self.models is not None else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GatewayKey:
        models = data.get("models")
        return cls(id=str(data["id"]), name=str(data.get("name", "")), digest=str(data["digest"]),
                   created=str(data.get("created", "")), models=tuple(models) if models is not None else None,
                   rpm=data.get("rpm"), tpm=data.get("tpm"), budget=data.get("budget"),
                   budget_period=data.get("budget_period", "total"), revoked=data.get("revoked"))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(id, secret) of a key in the gateway's format, else None."""
    if not presented.startswith(PREFIX) or len(presented) < len(PREFIX) + _ID_CHARS + 2:
        return None
    end = len(PREFIX) + _ID_CHARS
    if presented[end] != "-":
        return None
    return presented[len(PREFIX):end], presented[end + 1:]


class Keyring:
    """The keys a running gateway accepts, by id. `check` is the whole authentication."""

    __slots__ = ("_by_id",)

    _DUMMY = digest("not a key")

    def __init__(self, keys: Sequence[GatewayKey] = ()) -> None:
        self._by_id = {key.id: key for key in keys if key.revoked is None}

    def __len__(self) -> int:
        return len(self._by_id)

    def check(self, presented: str) -> GatewayKey | None:
        """The key `presented` is, if it is a valid, unrevoked one. Compared in constant
        time; an unknown id is compared against a dummy digest, so it costs the same."""
        parts = split_key(presented)
        if parts is None:
            return None
        key = self._by_id.get(parts[0])
        expected = key.digest if key is not None else self._DUMMY
        if hmac.compare_digest(digest(parts[1]), expected) and key is not None:
            return key
        return None


class KeyStore:
    """Where the keys are kept: read them, create one, revoke one. `create` and `revoke`
    read, change and write back the whole list, inside `_changing()` (which the database
    store makes one locked transaction, so two machines never lose each other's change)."""

    where = ""  # for messages: the file, or the database (its password masked)

    def stamp(self) -> Any:
        """A value that changes whenever the keys do (None: no keys kept yet)."""
        raise NotImplementedError

    def load(self) -> list[GatewayKey]:
        raise NotImplementedError

    def _save(self, keys: list[GatewayKey]) -> None:
        raise NotImplementedError

    @contextmanager
    def _changing(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        """Let go of what the store holds open (a database connection)."""

    def create(self, name: str, *, models: Sequence[str] | None = None, rpm: int | None = None,
               tpm: int | None = None, budget: float | None = None,
               budget_period: str = "total") -> tuple[GatewayKey, str]:
        """A new key: (its record, the full key to hand to the caller, shown once)."""
        if budget_period not in _PERIODS:
            raise ConfigError(f"budget period {budget_period!r} is not one of {', '.join(_PERIODS)}")
        for value, what in ((rpm, "rpm"), (tpm, "tpm"), (budget, "budget")):
            if value is not None and value <= 0:
                raise ConfigError(f"{what} must be a positive number, not {value}")
        with self._changing():
            keys = self.load()
            if any(key.name == name and key.revoked is None for key in keys):
                raise ConfigError(f"a key named {name!r} already exists; revoke it first or choose another name")
            key_id = secrets.token_hex(_ID_CHARS // 2)
            secret = secrets.token_urlsafe(32)
            record = GatewayKey(id=key_id, name=name, digest=digest(secret), created=_now(),
                                models=tuple(models) if models else None, rpm=rpm, tpm=tpm, budget=budget,
                                budget_period=budget_period)
            self._save([*keys, record])
        return record, f"{PREFIX}{key_id}-{secret}"

    def revoke(self, which: str) -> GatewayKey:
        """Revoke the key with this id, name, or shown form (`hgw-<id>-…`)."""
        with self._changing():
            keys = self.load()
            wanted = which.removeprefix(PREFIX).split("-")[0] if which.startswith(PREFIX) else which
            found = [key for key in keys if key.revoked is None and wanted in (key.id, key.name)]
            if not found:
                raise ConfigError(f"no active gateway key with id or name {which!r}; "
                                  "`human gateway keys list` shows them")
            if len(found) > 1:
                raise ConfigError(f"{which!r} names {len(found)} keys; revoke by id")
            target = found[0]
            revoked = GatewayKey(**{**asdict(target), "revoked": _now()})
            self._save([revoked if key is target else key for key in keys])
        return revoked


class KeyFile(KeyStore):
    """The keys file. Every write replaces the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def stamp(self) -> tuple[int, int] | None:
        """(mtime_ns, size) of the file, None when there is none: a change means reload."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def load(self) -> list[GatewayKey]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ConfigError(f"cannot read the gateway keys file {self.path}: {exc.strerror}") from None
        try:
            return keys_from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"the gateway keys file {self.path} is not valid (was it edited by hand?); "
                              "restore it, or move it away and create the keys again") from None

    def _save(self, keys: list[GatewayKey]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps(keys_to_json(keys), indent=2) + "\n"
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".gateway-keys.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise


def keys_to_json(keys: Sequence[GatewayKey]) -> dict[str, Any]:
    """The keys as the keys file (and the database's one row of them) hold them."""
    return {"version": 1, "keys": [key.to_json() for key in keys]}


def keys_from_json(data: Mapping[str, Any]) -> list[GatewayKey]:
    """The keys from `keys_to_json`'s shape; KeyError, TypeError or AttributeError when it is not."""
    return [GatewayKey.from_json(item) for item in data.get("keys", ())]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
