"""Capability profiles: what `human doctor` learned about one endpoint, and what the
client changes in a request because of it.

A profile belongs to one (provider, base URL, model) and lives in the user's state
directory, `$HU_STATE_DIR` or else `~/.human/state/`, in `profiles.json`:

    {"version": 1, "profiles": {"<provider> <base_url> <model>": {...Profile fields...}}}

It is written atomically (a temporary file renamed over the old one), mode 0600 in a
0700 directory. A profile whose stored base URL differs from the endpoint's is ignored:
the endpoint changed, what was learned about the old one says nothing about the new.
`human doctor` always probes again and overwrites it.

What a profile changes (`Profile.drop`, `Profile.rename`), each change reported by the
client as an adjustment on the response and a warning on the "human.client" logger:

    max_tokens rejected, max_completion_tokens accepted   rename max_tokens → max_completion_tokens
    max_completion_tokens rejected, max_tokens accepted   rename max_completion_tokens → max_tokens
    both rejected                                         drop both
    stream_options rejected                               drop stream_options
    json_object and json_schema both rejected             drop response_format

Rejected tools are *not* dropped: an answer without the tools that were the point of
the call is worse than the server's 400 (peers.md §3 item 15, litellm#40470).

Reading is cached per process by the file's modification time, so the hot path costs one
`stat`; nothing is read at import.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Profile", "changes_for", "load_profile", "profile_path", "remember", "save_profile", "state_dir", "warn_once",
]

log = logging.getLogger("human.profile")

Changes = tuple[frozenset[str], dict[str, str]]  # (drop, rename)

FILE_NAME = "profiles.json"
VERSION = 1
_MAX_BYTES = 4 << 20

_cache: dict[str, _Read] = {}  # path -> what was read, while its mtime and size are unchanged
# (HU_STATE_DIR, HOME) -> the profiles file: building a Path costs more than the stat
_paths: dict[tuple[str | None, str | None], str] = {}
# (provider, model, adjustment) already logged by this process
_warned: set[tuple[str, str, str]] = set()


@dataclass(frozen=True, slots=True)
class Profile:
    """What one endpoint accepts, as `human doctor` measured it. None means "not known"
    (not probed, or the probe failed for another reason than a rejection)."""

    provider: str
    base_url: str
    model: str
    probed_at: str  # ISO 8601, UTC
    accepts_max_tokens: bool | None = None
    accepts_max_completion_tokens: bool | None = None
    accepts_stream_options: bool | None = None
    streams_usage: bool | None = None
    accepts_content_parts: bool | None = None
    supports_tools: bool | None = None
    tool_deltas_have_index: bool | None = None
    tool_deltas_have_id: bool | None = None
    supports_json_object: bool | None = None
    supports_json_schema: bool | None = None
    first_token_s: float | None = None
    # Accepted is not honoured: False = the server took response_format and answered
    # prose anyway (aimock, many local setups; wave2.md B.2 item 1). human.structured
    # then asks with the schema in the prompt instead.
    honours_json_object: bool | None = None
    honours_json_schema: bool | None = None
    # Accepting tools is not calling them: True = the model called the probe's tool.
    calls_tools: bool | None = None

    @property
    def drop(self) -> frozenset[str]:
        """Request fields to leave out for this endpoint."""
        names = set()
        if self.accepts_max_tokens is False and self.accepts_max_completion_tokens is False:
            names |= {"max_tokens", "max_completion_tokens"}
        if self.accepts_stream_options is False:
            names.add("stream_options")
        if self.supports_json_object is False and self.supports_json_schema is False:
            names.add("response_format")
        return frozenset(names)

    @property
    def rename(self) -> dict[str, str]:
        """Request fields to send under another name for this endpoint."""
        if self.accepts_max_tokens is False and self.accepts_max_completion_tokens:
            return {"max_tokens": "max_completion_tokens"}
        if self.accepts_max_completion_tokens is False and self.accepts_max_tokens:
            return {"max_completion_tokens": "max_tokens"}
        return {}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        """Lenient: unknown fields (a newer version wrote them) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in names})


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$HU_STATE_DIR`, else `~/.human/state`."""
    env = os.environ if env is None else env
    configured = env.get("HU_STATE_DIR", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".human" / "state"


def profile_path(env: Mapping[str, str] | None = None) -> Path:
    return state_dir(env) / FILE_NAME


def load_profile(provider: str, base_url: str, model: str) -> Profile | None:
    """The saved profile of this endpoint, or None (never probed, or the endpoint moved).

        profile = load_profile("local", "http://127.0.0.1:8080/v1", "qwen")
        if profile is not None: print(profile.drop, profile.rename)
    """
    stored = _read(_file()).profiles.get(_key(provider, base_url, model))
    if not isinstance(stored, Mapping) or _norm(str(stored.get("base_url", ""))) != _norm(base_url):
        return None
    try:
        return Profile.from_json(stored)
    except TypeError:  # a hand-edited entry that lacks a required field
        return None


def changes_for(provider: str, base_url: str, model: str) -> Changes:
    """(drop, rename) for a request to this endpoint: nothing when it has no profile.
    Called for every request; costs a `stat` while the file is unchanged."""
    read = _read(_file())
    if read is _MISSING:
        return frozenset(), {}
    memo = read.changes
    key = (provider, base_url, model)
    changes = memo.get(key)
    if changes is None:
        profile = load_profile(provider, base_url, model)
        changes = memo[key] = (profile.drop, profile.rename) if profile else (frozenset(), {})
    return changes


def warn_once(logger: logging.Logger, provider: str, model: str, adjustments: list[str]) -> None:
    """Log each adjustment as a warning, once per process per endpoint: loud, not noisy."""
    for adjustment in adjustments:
        key = (provider, model, adjustment)
        if key in _warned:
            continue
        _warned.add(key)
        logger.warning("[%s/%s] %s: from the profile `human doctor` saved (run it again to refresh)",
                       provider, model, adjustment)


def save_profile(profile: Profile) -> Path:
    """Store (or replace) this endpoint's profile; returns the file's path."""
    path = profile_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(path.parent, 0o700)
    except OSError:  # not ours to change (a shared HU_STATE_DIR); the file is still 0600
        pass
    profiles = dict(_read(str(path)).profiles)
    profiles[_key(profile.provider, profile.base_url, profile.model)] = profile.to_json()
    payload = json.dumps({"version": VERSION, "profiles": profiles}, indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".profiles-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp creates it 0600
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _cache.pop(str(path), None)
    return path


def remember(provider: str, base_url: str, model: str, **learned: bool | None) -> Path:
    """Record what a normal request just taught about this endpoint (e.g. the server
    rejected `stream_options`: `remember(..., accepts_stream_options=False)`), keeping
    the rest of its profile. `human doctor` still overwrites the whole profile."""
    from datetime import datetime, timezone

    names = {f.name for f in dataclasses.fields(Profile)}
    unknown = sorted(set(learned) - names)
    if unknown:
        raise TypeError(f"unknown profile field(s): {', '.join(unknown)}")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    profile = load_profile(provider, base_url, model) or Profile(provider, base_url, model, now)
    values: dict[str, Any] = dict(learned)
    return save_profile(dataclasses.replace(profile, **values))


def rejects_stream_options(exc: BaseException) -> bool:
    """A 400/422 saying the server does not take `stream_options` (which the CLI's `--usage`
    and the gateway add to meter a stream): then the request is sent again without it,
    and the endpoint remembered (`remember(..., accepts_stream_options=False)`)."""
    from .errors import BadRequestError, ContextLengthError

    if not isinstance(exc, BadRequestError) or isinstance(exc, ContextLengthError):
        return False
    return exc.param == "stream_options" or "stream_options" in exc.message


def _file() -> str:
    """`profile_path()`, memoised on the two variables it depends on (the hot path)."""
    env = os.environ
    where = (env.get("HU_STATE_DIR"), env.get("HOME"))
    name = _paths.get(where)
    if name is None:
        name = _paths[where] = str(profile_path())
    return name


def _key(provider: str, base_url: str, model: str) -> str:
    return f"{provider} {_norm(base_url)} {model}"


def _norm(base_url: str) -> str:
    return base_url.strip().rstrip("/")


@dataclass(slots=True)
class _Read:
    """One read of the file: the stored profiles, and (drop, rename) memoised per endpoint."""

    stamp: tuple[int, int]  # (mtime_ns, size)
    profiles: dict[str, Any]
    changes: dict[tuple[str, str, str], Changes]


_MISSING = _Read((-1, -1), {}, {})


def _read(name: str) -> _Read:
    """The stored profiles, from the cache while the file's mtime and size are unchanged.
    A missing, unreadable or damaged file reads as empty (logged, never raised: a
    profile is an optimisation, not a requirement)."""
    try:
        info = os.stat(name)
    except OSError:
        _cache.pop(name, None)
        return _MISSING
    cached = _cache.get(name)
    if cached is not None and cached.stamp == (info.st_mtime_ns, info.st_size):
        return cached
    profiles: dict[str, Any] = {}
    try:
        if info.st_size > _MAX_BYTES:
            raise ValueError(f"larger than {_MAX_BYTES} bytes")
        with open(name, encoding="utf-8") as handle:
            document = json.load(handle)
        if isinstance(document, dict) and isinstance(document.get("profiles"), dict):
            profiles = document["profiles"]
        else:
            raise ValueError('expected {"version": 1, "profiles": {...}}')
    except (OSError, ValueError) as exc:
        log.warning("ignoring the capability profiles in %s (%s); `human doctor` rewrites the file", name, exc)
    entry = _cache[name] = _Read((info.st_mtime_ns, info.st_size), profiles, {})
    return entry
