"""Reads a whole (non-streamed) chat-completion body into a `ChatResponse`. Pure: no I/O.

Two steps, so the transport can report a bad body before anything is interpreted:
- `decode_body` turns bytes into JSON, and says what went wrong when they are not:
  an HTML page (a wrong base URL, openclaw#68643), an empty body, a body cut off in
  the middle (worth a retry), or other invalid JSON (with a preview).
- `parse_completion` reads the JSON leniently (peers.md §3, items 17–24): an error
  object inside a 200, missing or empty `choices`, content as a string, null or an
  array of parts, reasoning in any of its spellings, tool-call arguments sent as an
  object, tool calls without ids (given a stable synthetic id, as streamed ones are), a
  `finish_reason` that forgot the tool calls, a single choice numbered 1.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import BadResponseError
from ..types import ChatResponse, ToolCall
from .shapes import (
    KEEP_FINISH_REASONS,
    ThinkSplitter,
    compact_json,
    describe_error,
    flatten_parts,
    preview,
    synthetic_call_id,
    usage_from,
)

__all__ = ["decode_body", "parse_completion"]

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_PARTIAL_LITERALS = ("true", "false", "null")


def decode_body(
    raw: bytes,
    content_type: str | None,
    *,
    provider: str | None = None,
    model: str | None = None,
    status: int | None = None,
) -> Any:
    """The body as parsed JSON, or `BadResponseError` saying why it is not JSON.

    >>> decode_body(b'{"choices": []}', "application/json")
    {'choices': []}
    """
    if raw[:1] == b"{" and not (content_type and "html" in content_type):
        try:  # the usual case, without the checks below that only explain failures
            return json.loads(raw)
        except (ValueError, RecursionError):
            pass
    where = {"provider": provider, "model": model, "status": status}
    body_preview = raw[:200].decode("utf-8", "replace")
    stripped = raw.strip()
    if not stripped:
        raise BadResponseError(
            "the server returned an empty body where a JSON answer was expected",
            retryable=True,
            body_preview=body_preview,
            **where,
        )
    if stripped.startswith(b"\xef\xbb\xbf"):
        stripped = stripped[3:].lstrip()
    if (content_type and "text/html" in content_type.lower()) or stripped[:1] == b"<":
        title = _TITLE.search(stripped[:4096])
        named = ""
        if title:
            text = " ".join(title.group(1).decode("utf-8", "replace").split())
            named = f" titled {preview(text, 80)}" if text else ""
        raise BadResponseError(
            f"the server returned an HTML page{named} instead of JSON (check base_url: it "
            "should point at the API, usually ending in /v1, not at a website)",
            retryable=status is not None and status >= 500,
            body_preview=body_preview,
            **where,
        )
    try:
        return json.loads(stripped)
    except UnicodeDecodeError:
        text = stripped.decode("utf-8", "replace")
    except RecursionError:
        raise _invalid("the body nests JSON too deeply to read", body_preview, where) from None
    except json.JSONDecodeError as exc:
        raise _json_error(exc, body_preview, where) from None
    try:
        return json.loads(text)  # invalid UTF-8 inside: read it with U+FFFD in place
    except RecursionError:
        raise _invalid("the body nests JSON too deeply to read", body_preview, where) from None
    except json.JSONDecodeError as exc:
        raise _json_error(exc, body_preview, where) from None


def parse_completion(body: Any, *, provider: str | None = None, model: str | None = None) -> ChatResponse:
    """A decoded `chat.completion` body as a `ChatResponse` (`raw` keeps the body;
    `model_requested` is `model`, the model the request named)."""
    if body.__class__ is not dict:
        raise BadResponseError(
            f'expected a JSON object with "choices", got a JSON {type(body).__name__}: {preview(compact_json(body))}',
            body_preview=compact_json(body)[:200],
            provider=provider,
            model=model,
        )
    err = body.get("error")
    if err is not None and err is not False:
        text, status, retryable = describe_error(err)
        raise BadResponseError(
            f"the server answered with an error object instead of a completion: {text}",
            retryable=retryable,
            body_preview=compact_json(body)[:200],
            provider=provider,
            model=model,
            status=status,
        )
    choice = _choice_zero(body.get("choices"))
    message = choice.get("message") if choice is not None else None
    if message.__class__ is not dict:
        message = {}
    reasoning: list[str] = []
    field = message.get("reasoning_content") or message.get("reasoning")
    if field.__class__ is str:
        reasoning.append(field)
    elif field.__class__ is list:
        reasoning.append(flatten_parts(field)[0])
    content = message.get("content")
    if content.__class__ is list:
        content, thought = flatten_parts(content)
        reasoning.append(thought)
    elif content.__class__ is not str:
        content = None
    if content and content[:64].lstrip().startswith("<think"):  # only then is there a block to split off
        thought, content = ThinkSplitter.split(content)
        reasoning.append(thought)
    tool_calls = _tool_calls(message.get("tool_calls"))
    finish_reason = choice.get("finish_reason") if choice is not None else None
    if finish_reason.__class__ is not str or not finish_reason:
        finish_reason = None
    if tool_calls and finish_reason not in KEEP_FINISH_REASONS:
        finish_reason = "tool_calls"
    response_id = body.get("id")
    server_model = body.get("model")
    return ChatResponse(
        content=content or None,
        tool_calls=tool_calls,
        usage=usage_from(body.get("usage")),
        finish_reason=finish_reason,
        model=server_model if server_model.__class__ is str and server_model else None,
        provider=provider,
        reasoning="".join(reasoning) or None,
        id=response_id if response_id.__class__ is str and response_id else None,
        raw=body,
        model_requested=model,
    )


def _choice_zero(choices: Any) -> dict[str, Any] | None:
    """Choice 0, else the only choice there is (a server that numbers it 1, issue 10)."""
    if choices.__class__ is not list:
        return None
    for choice in choices:
        if choice.__class__ is dict and choice.get("index", 0) in (0, None):
            return choice
    dicts = [choice for choice in choices if choice.__class__ is dict]
    return dicts[0] if len(dicts) == 1 else None


def _tool_calls(items: Any) -> tuple[ToolCall, ...]:
    """Every usable entry; one without a name is kept (name "") only if it has arguments."""
    if items.__class__ is dict:
        items = [items]
    elif items.__class__ is not list:
        return ()
    calls: list[ToolCall] = []
    for item in items:
        if item.__class__ is not dict:
            continue
        function = item.get("function")
        if function.__class__ is not dict:
            function = item  # name/arguments at the top level
        name = function.get("name")
        if name.__class__ is not str:
            name = ""
        arguments = function.get("arguments")
        if arguments is None:
            arguments = ""
        elif arguments.__class__ is not str:
            arguments = compact_json(arguments)  # llama.cpp#20198: an object, not a string
        if not name and not arguments:
            continue
        call_id = item.get("id")
        if call_id.__class__ is int:
            call_id = str(call_id)
        elif call_id.__class__ is not str or not call_id:
            call_id = synthetic_call_id(len(calls), name, arguments)
        kind = item.get("type")
        extra = None
        if not _MODELLED.issuperset(item):  # rare: a server's own fields (thought_signature)
            extra = {key: value for key, value in item.items() if key not in _MODELLED} or None
        calls.append(
            ToolCall(
                id=call_id, name=name, arguments=arguments, type=kind if kind.__class__ is str and kind else "function",
                extra=extra,
            )
        )
    return tuple(calls)


# The fields of a tool call we read; any other is kept verbatim in `ToolCall.extra`. `index`
# is a position in a stream, not part of the call, and is never sent back.
_MODELLED = frozenset({"id", "type", "function", "index", "name", "arguments"})


def _json_error(exc: json.JSONDecodeError, body_preview: str, where: dict[str, Any]) -> BadResponseError:
    doc = exc.doc
    end = len(doc.rstrip())
    rest = doc[exc.pos :].strip()
    truncated = doc.lstrip()[:1] in ("{", "[") and (
        exc.pos >= end
        or exc.msg.startswith("Unterminated string")
        or any(literal.startswith(rest) for literal in _PARTIAL_LITERALS)
        or _is_number_prefix(rest)
    )
    if truncated:
        return BadResponseError(
            f"the JSON body looks truncated: it ends after {end} characters in the middle of "
            f"a value ({exc.msg}); the connection may have been cut",
            retryable=True,
            body_preview=body_preview,
            **where,
        )
    return _invalid(
        f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {preview(doc)}",
        body_preview,
        where,
    )


def _is_number_prefix(text: str) -> bool:
    return bool(text) and len(text) < 40 and all(c in "0123456789+-.eE" for c in text) and text[0] in "-0123456789.eE"


def _invalid(message: str, body_preview: str, where: dict[str, Any]) -> BadResponseError:
    return BadResponseError(message, retryable=False, body_preview=body_preview, **where)
