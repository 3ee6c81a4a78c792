"""A finished exchange, as a client hands it over, turned into an `Exchange` row, in two
steps so that the costly one can wait (issue 12: the log's whole budget is 15 % of a
request's CPU):

    capture(item) -> record    on the log's writer thread: only what the row needs, as
                               plain values (the answer's fields, the messages, usage, the
                               price), ~6 µs; `seal` marshals a batch of them, secrets
                               scrubbed, for the journal (journal.py), ~2.5 µs a record
    row_of(record) -> Exchange whoever imports the journal (a reader of the log, or the
                               writer when idle): canonical JSON, hashes, the parent
                               exchange, the id, ~45 µs

What a client hands over (a plain tuple: making it is all the caller pays):

    (started   unix time of the call,
     t0, t_first, t_end   perf_counter at the call, at the first streamed event (or None), at the end,
     messages  as given (a list is copied by the caller: it may change after the call),
     options   the call's options (temperature, tools...),
     stream    True for `stream()`,
     outcome   the ChatResponse, or the exception that ended the call,
     targets   the client's resolved targets (their keys are scrubbed from every stored text),
     requested (provider, model) as asked for)

A record is a tuple of plain values (marshal version 4 writes and reads it on every
Python ≥ 3.4): `(RECORD, started, ttft_s, total_s, stream, provider, model_requested,
model, messages, options, content, reasoning, tool_calls, replay, finish, usage, cost,
cost_note, attempts, error_type, error)`; or `(ROW, {field: value})` for a row another
producer made whole (the gateway's usage rows), imported as it is.

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
import marshal
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.wire import NOT_GIVEN, normalize_messages
from ..errors import AllAttemptsFailedError, APIError, ConfigError, HumanError
from ..types import ChatResponse
from . import Exchange

__all__ = ["RECORD", "ROW", "Finished", "build", "capture", "cheap", "id_floor", "message_hashes", "new_id", "row_of",
           "seal", "secrets_of"]

Finished = tuple[Any, ...]  # the tuple described in the module docstring
Record = tuple[Any, ...]  # what `capture` makes (a list after the rare JSON fallback of `seal`)

RECORD = 1
ROW = 2
MARSHAL_VERSION = 4  # read by every Python 3 since 3.4; later versions add nothing a record uses

_INTERRUPTED = {"GeneratorExit": "StreamClosed", "KeyboardInterrupt": "KeyboardInterrupt",
                "CancelledError": "Cancelled"}
# Unique, not secret: a generator seeded from the OS (a syscall per id would cost more
# than the rest of the id), seeded again in a forked child so parent and child differ.
_random = random.Random()
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_MS = (1 << 48) - 1
_RANDOM_MAX = (1 << 80) - 1
_id_lock = threading.Lock()
_last_ms, _last_random = -1, 0


def _after_fork() -> None:
    """A forked child must not continue its parent's sequence (both would make last + 1)."""
    global _id_lock, _last_ms
    _random.seed()
    _id_lock, _last_ms = threading.Lock(), -1  # a lock held by another thread at the fork stays held


os.register_at_fork(after_in_child=_after_fork)
_FIELDS = frozenset(Exchange._fields)


def build(item: Finished, continues: Callable[[bytes], tuple[str, str] | None],
          secrets: Sequence[str] | None = None) -> Exchange | None:
    """The row for one finished exchange, in one step (a logbook writing straight to a
    `Store`); None for a call that never reached a server (a config error, a bad
    argument). `secrets` (default: the keys of the item's targets) are scrubbed from
    every stored text."""
    record = capture(item)
    if record is None:
        return None
    if secrets is None:
        secrets = secrets_of(item[8])
    return row_of(marshal.loads(seal([record], secrets))[0], continues)


def capture(item: Finished) -> Record | None:
    """What the row of a finished exchange needs, as plain values (see the module
    docstring); None for a call that never reached a server. Cheap on purpose: it runs
    in the process that made the request."""
    started, t0, t_first, t_end, messages, options, stream, outcome, _, requested = item
    response = outcome if outcome.__class__ is ChatResponse else None
    if response is None and not _loggable(outcome):
        return None  # rejected before sending (bad messages included): nothing was exchanged
    if response is None:
        partial = getattr(outcome, "partial", None)
        source = partial if partial.__class__ is ChatResponse else None
    else:
        source = response
    content = reasoning = tool_calls = replay = finish = served = usage = None
    if source is not None:
        content, reasoning, finish, served = source.content, source.reasoning, source.finish_reason, source.model
        if source.tool_calls:
            tool_calls = [call.to_message() for call in source.tool_calls]
            replay = source.reasoning_replay  # to_message() adds the reasoning under this name
        u = source.usage
        if u is not None:
            usage = (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens,
                     u.reasoning_tokens, u.total_tokens)
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
    # the messages as sent (normalised when the row is made), the timings in seconds
    return (RECORD, started, None if t_first is None else t_first - t0, t_end - t0, bool(stream), provider,
            model_requested, served, messages, _options(options), content, reasoning, tool_calls, replay, finish,
            usage, cost, cost_note, _attempts(response, outcome), error_type, error)


def cheap(item: Finished) -> bool:
    """Whether `capture` of this item costs no I/O: its answer is priced already, or its
    price is a lookup made before (`Pricer.warm`). The first answer of a provider and
    model reads and parses price data (~2-20 ms), so it is captured on the log's thread,
    never on an event loop."""
    response = item[7]
    if response.__class__ is not ChatResponse or response._priced is not None or response._pricing is None:
        return True
    price_answer, target, _ = response._pricing  # set by the client that made it (client/base.py, _stamp)
    pricer = getattr(price_answer, "__self__", None)
    warm = getattr(pricer, "warm", None)
    return warm is not None and bool(warm(target, response.model))


def seal(records: list[Record], secrets: Sequence[str]) -> bytes:
    """Records as one marshal blob (a list: one call for a batch costs a third less per
    record than one each), with every secret replaced in every string. marshal writes
    each string as its UTF-8 bytes, so one search of the bytes per secret finds any;
    only then are the strings walked (rare: a key echoed in an error, or pasted in a
    prompt). Values marshal does not know (a str subclass, an object in a message) are
    stored as JSON would show them."""
    try:
        blob = marshal.dumps(records, MARSHAL_VERSION)
    except ValueError:
        records = [_plain(record) for record in records]
        blob = marshal.dumps(records, MARSHAL_VERSION)
    for secret in secrets:
        if secret.encode("utf-8", "surrogatepass") in blob:
            return marshal.dumps(_scrub_all(records, secrets), MARSHAL_VERSION)
    return blob


def _plain(record: Record) -> Record:
    """The record, or, when marshal cannot write it, its JSON view (message objects that
    are mappings made dicts first)."""
    try:
        marshal.dumps(record, MARSHAL_VERSION)
    except ValueError:
        if record[0] == RECORD:
            record = (*record[:8], normalize_messages(record[8]), *record[9:])
        plain: Record = json.loads(json.dumps(record, ensure_ascii=False, default=str))
        return plain
    return record


def row_of(record: Record, continues: Callable[[bytes], tuple[str, str] | None]) -> Exchange | None:
    """The row of a record (see the module docstring); `continues` finds the exchange a
    thread hash belongs to. Written for speed: one running hash, one JSON encoding per
    message, the row built positionally."""
    if record[0] == ROW:
        fields = record[1]
        return Exchange(**{name: value for name, value in fields.items() if name in _FIELDS})
    if record[0] != RECORD:
        return None
    (_, started, ttft, total, stream, provider, model_requested, served, messages, options, content, reasoning,
     tool_calls, replay, finish, usage, cost, cost_note, attempts, error_type, error) = record
    sent = normalize_messages(messages)
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
    new = rest if parent is not None else canon
    thread_hash = None
    if error_type is None:  # an answer: what a request continuing it begins with
        running.update((_answer_text(content, reasoning, tool_calls, replay) + "\n").encode())
        thread_hash = running.digest()
    started_ms = int(started * 1000)
    exchange_id = new_id(started_ms)
    prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, total_tokens = (
        usage or _NO_USAGE)
    return Exchange(
        exchange_id, parent[1] if parent is not None else exchange_id, parent[0] if parent is not None else None,
        started_ms, provider, model_requested, served, stream, _last_user_text(sent), "[" + ",".join(new) + "]",
        None if options is None else _canonical(options), content, reasoning,
        None if tool_calls is None else _canonical(tool_calls), finish, prompt_tokens, completion_tokens,
        cached_tokens, cache_write_tokens, reasoning_tokens, total_tokens, cost, cost_note,
        attempts, None if ttft is None else round(ttft * 1000, 3), round(total * 1000, 3), error_type, error,
        thread_hash,
    )


_NO_USAGE = (None,) * 6


def message_hashes(canonical: Sequence[str]) -> list[bytes]:
    """hashes[k] = the hash of the first k messages (as `row_of` computes them)."""
    running = hashlib.blake2b(digest_size=8)
    hashes = [running.digest()]
    for text in canonical:
        running.update(text.encode())
        running.update(b"\n")
        hashes.append(running.digest())
    return hashes
def new_id(ms: int | None = None) -> str:
    """A ULID (26 characters, Crockford base32): 48 bits of milliseconds then 80 random
    bits, so ids sort by time and several machines never collide. Monotonic within a
    process: a second id in the same millisecond is the previous one + 1 (the ULID spec's
    monotonic mode), so exchanges made in one millisecond still list in the order their
    rows were made (a conversation's turns on a fast local server: `human logs`, `-c`)."""
    global _last_ms, _last_random
    if ms is None:
        ms = int(time.time() * 1000)
    ms &= _MS
    with _id_lock:  # two importing threads in one millisecond must not make the same id
        if ms == _last_ms and _last_random < _RANDOM_MAX:
            r = _last_random + 1
        else:
            r = _random.getrandbits(79)  # a top bit of 0: 2**79 increments before overflow
        _last_ms, _last_random = ms, r
    p = _PAIRS  # ten bits a character pair
    return (_time_part(ms) + p[r >> 70] + p[(r >> 60) & 1023] + p[(r >> 50) & 1023] + p[(r >> 40) & 1023]
            + p[(r >> 30) & 1023] + p[(r >> 20) & 1023] + p[(r >> 10) & 1023] + p[r & 1023])


@functools.lru_cache(maxsize=64)
def _time_part(ms: int) -> str:
    """The first ten characters: 2 zero bits and the 48 bits of milliseconds."""
    return "".join([_PAIRS[(ms >> shift) & 1023] for shift in range(40, -1, -10)])


def id_floor(ms: int) -> str:
    """The smallest id made at or after `ms`: ids sort by time, so `id >= id_floor(t)`
    selects a time range through the primary key (no index of its own needed)."""
    return _time_part(ms & _MS) + "0" * 16


def _answer_text(content: str | None, reasoning: str | None, tool_calls: list[Any] | None, replay: str | None) -> str:
    """`_canonical(response.to_message())`, from the record's fields."""
    if tool_calls is None and _encode is not None:
        return '{"content":' + ("null" if content is None else _quote(content)) + ',"role":"assistant"}'
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
        if replay:
            message[replay] = reasoning or ""
    return _canonical(message)


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


def _scrub_all(value: Any, secrets: Sequence[str]) -> Any:
    """`value` with every secret replaced in every string, keys included."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "[REDACTED]")
        return value
    if isinstance(value, (list, tuple)):
        items = [_scrub_all(item, secrets) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {_scrub_all(key, secrets): _scrub_all(item, secrets) for key, item in value.items()}
    return value


def _options(options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The options given; tools by name only (their schemas are the same on every call
    and would be most of the row)."""
    kept = {name: value for name, value in options.items() if value is not None and value is not NOT_GIVEN}
    if not kept:
        return None
    tools = kept.get("tools")
    if tools.__class__ is list:
        kept["tools"] = _tool_names(tools)
    return kept


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
