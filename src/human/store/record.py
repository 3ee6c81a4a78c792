"""A finished exchange, as a client hands it over, turned into an `Exchange` row.
Runs on the writer's thread, never on the caller's: everything costly (JSON, hashing,
pricing, scrubbing) happens here.

What a client hands over (a plain tuple: making it is all the caller pays):

    (started   unix time of the call,
     t0, t_first, t_end   perf_counter at the call, at the first streamed event (or None), at the end,
     messages  as given (a list is copied by the caller: it may change after the call),
     options   the call's options (temperature, tools...),
     stream    True for `stream()`,
     outcome   the ChatResponse, or the exception that ended the call,
     targets   the client's resolved targets (their keys are scrubbed from every stored text),
     requested (provider, model) as asked for)

Conversations: the hash of a message list chains the canonical JSON of each message, so
the hash of "every message sent plus the answer" of one exchange equals the hash of the
first messages of a request that continues it. The parent is the exchange whose
`thread_hash` equals the hash of the new request's messages up to its last assistant
message; only the messages after it are stored again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.wire import normalize_messages
from ..errors import AllAttemptsFailedError, APIError, ConfigError, HumanError
from ..types import ChatResponse
from . import Exchange

__all__ = ["Finished", "build", "id_floor", "message_hashes", "new_id"]

Finished = tuple[Any, ...]  # the tuple described in the module docstring

_INTERRUPTED = {"GeneratorExit": "StreamClosed", "KeyboardInterrupt": "KeyboardInterrupt",
                "CancelledError": "Cancelled"}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def build(item: Finished, continues: Callable[[bytes], tuple[str, str] | None]) -> Exchange | None:
    """The row for one finished exchange; None for a call that never reached a server
    (a config error, a bad argument)."""
    started, t0, t_first, t_end, messages, options, stream, outcome, targets, requested = item
    response = outcome if isinstance(outcome, ChatResponse) else None
    if response is None and not _loggable(outcome):
        return None
    try:
        sent = normalize_messages(messages)
    except (ValueError, TypeError, AttributeError):
        return None  # rejected before sending: nothing was exchanged
    secrets = _secrets(targets)
    canon = [_canonical(message) for message in sent]
    hashes = message_hashes(canon)
    last_assistant = max((i for i, m in enumerate(sent) if m.get("role") == "assistant"), default=-1)
    parent = continues(hashes[last_assistant + 1]) if last_assistant >= 0 else None
    new = canon[last_assistant + 1:] if parent is not None else canon
    started_ms = int(started * 1000)
    exchange_id = new_id(started_ms)

    if response is None:
        partial = getattr(outcome, "partial", None)
        answer_source = partial if isinstance(partial, ChatResponse) else None
    else:
        answer_source = response
    tool_calls = None
    thread_hash = None
    if answer_source is not None:
        calls = [call.to_message() for call in answer_source.tool_calls]
        tool_calls = json.dumps(calls, ensure_ascii=False) if calls else None
        if response is not None:
            thread_hash = _chain(hashes[-1], _canonical(response.to_message()))
    usage = answer_source.usage if answer_source is not None else None
    cost = cost_note = None
    if response is not None:
        priced = response.cost
        cost = None if priced is None else str(priced.amount)
        cost_note = response.no_cost_reason if priced is None else priced.source

    provider, model_requested = _who(response, outcome, requested)
    return Exchange(
        id=exchange_id,
        conversation_id=parent[1] if parent is not None else exchange_id,
        parent_id=parent[0] if parent is not None else None,
        started_ms=started_ms,
        provider=provider,
        model_requested=model_requested,
        model=answer_source.model if answer_source is not None else None,
        stream=bool(stream),
        prompt=_scrub(_last_user_text(sent), secrets),
        messages=_scrub("[" + ",".join(new) + "]", secrets),
        options=_scrub(_options(options), secrets),
        answer=_scrub(answer_source.content, secrets) if answer_source is not None else None,
        reasoning=_scrub(answer_source.reasoning, secrets) if answer_source is not None else None,
        tool_calls=_scrub(tool_calls, secrets),
        finish_reason=answer_source.finish_reason if answer_source is not None else None,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cached_tokens=usage.cached_tokens if usage else None,
        cache_write_tokens=usage.cache_write_tokens if usage else None,
        reasoning_tokens=usage.reasoning_tokens if usage else None,
        total_tokens=usage.total_tokens if usage else None,
        cost=cost,
        cost_note=cost_note,
        attempts=_attempts(response, outcome),
        ttft_ms=None if t_first is None else round((t_first - t0) * 1000, 3),
        total_ms=round((t_end - t0) * 1000, 3),
        error_type=None if response is not None else _error_type(outcome),
        error=None if response is not None else _scrub(str(outcome) or type(outcome).__name__, secrets),
        thread_hash=thread_hash,
    )


def message_hashes(canonical: Sequence[str]) -> list[bytes]:
    """hashes[k] = the hash of the first k messages (hashes[0] is of none)."""
    hashes = [b""]
    for text in canonical:
        hashes.append(_chain(hashes[-1], text))
    return hashes


def new_id(ms: int | None = None) -> str:
    """A ULID (26 characters, Crockford base32): 48 bits of milliseconds then 80 random
    bits, so ids sort by time and several machines never collide."""
    value = ((int(time.time() * 1000) if ms is None else ms) & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def id_floor(ms: int) -> str:
    """The smallest id made at or after `ms`: ids sort by time, so `id >= id_floor(t)`
    selects a time range through the primary key (no index of its own needed)."""
    return new_id(ms)[:10] + "0" * 16


def _chain(previous: bytes, text: str) -> bytes:
    # 64 bits: a false match needs a collision among one user's conversations (~2^32 of them).
    return hashlib.blake2b(previous + text.encode("utf-8"), digest_size=8).digest()


def _canonical(message: Mapping[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _loggable(outcome: BaseException) -> bool:
    if isinstance(outcome, ConfigError):
        return False  # nothing was sent
    return isinstance(outcome, HumanError) or type(outcome).__name__ in _INTERRUPTED


def _error_type(outcome: BaseException) -> str:
    name = type(outcome).__name__
    return _INTERRUPTED.get(name, name)


def _attempts(response: ChatResponse | None, outcome: Any) -> int:
    if response is not None:
        return response.attempt
    if isinstance(outcome, AllAttemptsFailedError):
        return len(outcome.attempts)
    return 1


def _who(response: ChatResponse | None, outcome: Any, requested: tuple[str | None, str | None]
         ) -> tuple[str | None, str | None]:
    if response is not None:
        return response.provider, response.model_requested
    if isinstance(outcome, APIError):
        return outcome.provider or requested[0], outcome.model or requested[1]
    if isinstance(outcome, AllAttemptsFailedError) and outcome.attempts:
        first = outcome.attempts[0]
        return first.provider, first.model
    return requested


def _secrets(targets: Mapping[Any, Any]) -> tuple[str, ...]:
    found: set[str] = set()
    for target in list(targets.values()):
        found.update(value for value in target.secrets() if value and len(value) >= 4)
    return tuple(found)


def _scrub(text: str | None, secrets: Sequence[str]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    return text


def _options(options: Mapping[str, Any]) -> str | None:
    kept = {name: value for name, value in options.items() if value is not None and _given(value)}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True, default=str) if kept else None


def _given(value: Any) -> bool:
    return type(value).__name__ != "NotGiven"


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content
                                if isinstance(part, Mapping) and part.get("type") == "text") or None
            return None
    return None
