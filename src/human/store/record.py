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

import functools
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.wire import NOT_GIVEN, normalize_messages
from ..errors import AllAttemptsFailedError, APIError, ConfigError, HumanError
from ..types import ChatResponse
from . import Exchange

__all__ = ["Finished", "build", "id_floor", "message_hashes", "new_id", "secrets_of"]

Finished = tuple[Any, ...]  # the tuple described in the module docstring

_INTERRUPTED = {"GeneratorExit": "StreamClosed", "KeyboardInterrupt": "KeyboardInterrupt",
                "CancelledError": "Cancelled"}
# Unique, not secret: a generator seeded from the OS (a syscall per id would cost more
# than the rest of the id), seeded again in a forked child so parent and child differ.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_MS = (1 << 48) - 1


def build(item: Finished, continues: Callable[[bytes], tuple[str, str] | None],
          secrets: Sequence[str] | None = None) -> Exchange | None:
    """The row for one finished exchange; None for a call that never reached a server
    (a config error, a bad argument). `secrets` (default: the keys of the item's
    targets) are scrubbed from every stored text.

    Written for speed (the log's whole budget is 15 % of a request's CPU): one running
    hash, one JSON encoding per message, the row built positionally."""
    started, t0, t_first, t_end, messages, options, stream, outcome, targets, requested = item
    response = outcome if outcome.__class__ is ChatResponse else None
    if response is None and not _loggable(outcome):
        return None
    try:
        sent = normalize_messages(messages)
    except (ValueError, TypeError, AttributeError):
        return None  # rejected before sending: nothing was exchanged
    if secrets is None:
        secrets = secrets_of(targets)

    canon = [_canonical(message) for message in sent]
    last_assistant = -1
    for index, message in enumerate(sent):
        if message.get("role") == "assistant":
            last_assistant = index
    # The hash of a message list: its canonical texts, each followed by a newline (never
    # inside compact JSON: a newline in a string is escaped). Hashed in two pieces only
    # when a prefix (up to the last assistant message) must be looked up.
    running = hashlib.blake2b(digest_size=8)
    parent = None
    if last_assistant >= 0:
        running.update(("\n".join(canon[:last_assistant + 1]) + "\n").encode())
        parent = continues(running.digest())
    rest = canon[last_assistant + 1:]
    if rest:
        running.update(("\n".join(rest) + "\n").encode())
    new = canon[last_assistant + 1:] if parent is not None else canon
    started_ms = int(started * 1000)
    exchange_id = new_id(started_ms)

    if response is None:
        partial = getattr(outcome, "partial", None)
        source = partial if partial.__class__ is ChatResponse else None
    else:
        source = response
    content = reasoning = tool_calls = finish = served = usage = thread_hash = None
    if source is not None:
        content, reasoning, finish, served, usage = (source.content, source.reasoning, source.finish_reason,
                                                     source.model, source.usage)
        if source.tool_calls:
            tool_calls = _canonical([call.to_message() for call in source.tool_calls])
        if response is not None:
            running.update((_answer_text(response) + "\n").encode())
            thread_hash = running.digest()
    cost = cost_note = error_type = error = None
    if response is not None:
        priced = response.cost
        if priced is None:
            cost_note = response.no_cost_reason
        else:
            cost, cost_note = str(priced.amount), priced.source
    else:
        error_type = _error_type(outcome)
        error = str(outcome) or type(outcome).__name__
    provider, model_requested = _who(response, outcome, requested)
    texts = [_last_user_text(sent), "[" + ",".join(new) + "]", _options(options), content, reasoning, tool_calls,
             error]
    if secrets:
        texts = [_scrub(text, secrets) for text in texts]
    prompt, sent_json, options_json, content, reasoning, tool_calls, error = texts
    return Exchange(
        exchange_id, parent[1] if parent is not None else exchange_id, parent[0] if parent is not None else None,
        started_ms, provider, model_requested, served, bool(stream), prompt, sent_json, options_json, content,
        reasoning, tool_calls, finish,
        *((usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.cache_write_tokens,
           usage.reasoning_tokens, usage.total_tokens) if usage is not None else _NO_USAGE),
        cost, cost_note, _attempts(response, outcome),
        None if t_first is None else round((t_first - t0) * 1000, 3), round((t_end - t0) * 1000, 3),
        error_type, error, thread_hash,
    )


_NO_USAGE = (None,) * 6


def message_hashes(canonical: Sequence[str]) -> list[bytes]:
    """hashes[k] = the hash of the first k messages (as `build` computes them)."""
    running = hashlib.blake2b(digest_size=8)
    hashes = [running.digest()]
    for text in canonical:
        running.update(text.encode())
        running.update(b"\n")
        hashes.append(running.digest())
    return hashes


def new_id(ms: int | None = None) -> str:
    """A ULID (26 characters, Crockford base32): 48 bits of milliseconds then 80 random
    bits, so ids sort by time and several machines never collide."""
    if ms is None:
        ms = int(time.time() * 1000)
    p, r = _PAIRS, _random.getrandbits(80)  # ten bits a character pair
    return (_time_part(ms & _MS) + p[r >> 70] + p[(r >> 60) & 1023] + p[(r >> 50) & 1023] + p[(r >> 40) & 1023]
            + p[(r >> 30) & 1023] + p[(r >> 20) & 1023] + p[(r >> 10) & 1023] + p[r & 1023])


@functools.lru_cache(maxsize=64)
def _time_part(ms: int) -> str:
    """The first ten characters: 2 zero bits and the 48 bits of milliseconds."""
    return "".join([_PAIRS[(ms >> shift) & 1023] for shift in range(40, -1, -10)])


def id_floor(ms: int) -> str:
    """The smallest id made at or after `ms`: ids sort by time, so `id >= id_floor(t)`
    selects a time range through the primary key (no index of its own needed)."""
    return new_id(ms)[:10] + "0" * 16


def _answer_text(response: ChatResponse) -> str:
    """`_canonical(response.to_message())`, without building the message when it is text."""
    if response.tool_calls or _encode is None:
        return _canonical(response.to_message())
    content = response.content
    return '{"content":' + ("null" if content is None else _quote(content)) + ',"role":"assistant"}'


def _canonical(value: Any) -> str:
    """Compact JSON with sorted keys: the same text for the same message, whoever built it."""
    if _encode is None:
        return _encoder.encode(value)
    return "".join(_encode(value, 0))


# json.dumps builds an encoder on every call; the log writes a few values per exchange, so
# it builds one, once (the C encoder when there is one: CPython's `json.encoder`).
_encoder = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
_make = getattr(json.encoder, "c_make_encoder", None)
_quote = json.encoder.encode_basestring
_encode = None if _make is None else _make(None, str, _quote, None, ":", ",", True, False, True)


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


def secrets_of(targets: Mapping[Any, Any]) -> tuple[str, ...]:
    """The keys (and secret-looking header values) of a client's resolved targets."""
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
    """The options as JSON; tools by name only (their schemas are the same on every call
    and would be most of the row)."""
    kept = {name: value for name, value in options.items() if value is not None and value is not NOT_GIVEN}
    if not kept:
        return None
    tools = kept.get("tools")
    if tools.__class__ is list:
        kept["tools"] = _tool_names(tools)
    return _canonical(kept)


def _tool_names(tools: list[Any]) -> list[Any]:
    """Names of the tools, remembered for the list object a program passes on every call
    (the cache holds the list itself, so its id cannot be reused while cached)."""
    cached = _names.get(id(tools))
    if cached is not None and cached[0] is tools and cached[1] == len(tools):
        return cached[2]
    names = [_tool_name(tool) for tool in tools]
    if len(_names) > 64:
        _names.clear()
    _names[id(tools)] = (tools, len(tools), names)
    return names


_names: dict[int, tuple[list[Any], int, list[Any]]] = {}


def _tool_name(tool: Any) -> Any:
    try:
        return tool["function"]["name"]
    except (TypeError, KeyError, IndexError):
        return str(tool)[:80]


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
