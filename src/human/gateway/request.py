"""A caller's chat request, checked, and the bytes sent upstream for each target. Pure.

What the gateway changes in a request, and nothing else (every other field is passed on
as the caller wrote it):

- `model`: the route's upstream model (`fast` -> `llama-3.1-8b-instant`);
- the token limit goes under the field the provider takes (`token_field` of its registry
  row or providers[] entry): `max_tokens` <-> `max_completion_tokens`;
- what the endpoint's capability profile says it rejects (`human doctor`): renamed or
  dropped, as the client does;
- streams: `stream_options.include_usage` is always asked for (unless the profile says the
  endpoint rejects `stream_options`), so every stream is metered (litellm#37923, PR #35290);
  the extra usage chunk is cut from what the caller gets when the caller did not ask.

When nothing changes, the caller's bytes go upstream as they came. Otherwise the changed
members are spliced into the caller's text (`core/members.py`: a 600-byte request costs
~1 µs so, against 26 µs to encode it again, and a long conversation's saving grows with
it), once per target (a fallback target gets its own). A body the splice cannot take
(duplicate names, not UTF-8, a member to drop) is encoded again whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.members import Span, members, splice
from ..core.wire import encode
from .reply import Failure, refusal

__all__ = ["ChatRequest", "Rewrite", "parse_request"]


_INCLUDE_USAGE = '"stream_options":{"include_usage":true},'


@dataclass(slots=True)
class ChatRequest:
    raw: bytes
    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool  # the caller asked for stream_options.include_usage
    text: str | None = None  # the body as text, with where each member lies: for a splice
    where: dict[str, Span] | None = None


def parse_request(raw: bytes) -> ChatRequest | Failure:
    """The request, or the 400 that says what is wrong with it."""
    text: str | None = None
    found = None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        pass
    else:
        found = members(text)
    if found is not None:
        body, where = found
    else:
        text = where = None
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return refusal(400, "the request body is not valid JSON", "invalid_json")
    if body.__class__ is not dict:
        return refusal(400, "the request body must be a JSON object", "invalid_request")
    model = body.get("model")
    if model.__class__ is not str or not model:
        return refusal(400, "\"model\" is required: one of the ids GET /v1/models lists", "missing_model",
                       param="model")
    messages = body.get("messages")
    if messages.__class__ is not list or not messages:
        return refusal(400, "\"messages\" must be a non-empty list", "invalid_messages", param="messages")
    stream = body.get("stream", False)
    if stream.__class__ is not bool:
        return refusal(400, "\"stream\" must be true or false", "invalid_stream", param="stream")
    options = body.get("stream_options")
    wants_usage = stream and options.__class__ is dict and options.get("include_usage") is True
    return ChatRequest(raw, body, model, stream, wants_usage, text, where)


class Rewrite:
    """How requests change for one target: built once per target, applied per request."""

    __slots__ = ("model", "model_json", "rename", "drop", "usage")

    def __init__(self, model: str, token_field: str, drop: frozenset[str], rename: dict[str, str]) -> None:
        self.model = model
        self.model_json = json.dumps(model, ensure_ascii=False)
        other = "max_tokens" if token_field == "max_completion_tokens" else "max_completion_tokens"
        renames = {other: token_field}
        renames.update(rename)  # the profile's word wins: it was measured on this endpoint
        self.rename = tuple((old, new) for old, new in renames.items() if old != new)
        self.drop = drop
        self.usage = "stream_options" not in drop

    def apply(self, request: ChatRequest) -> bytes:
        """The upstream body: the caller's bytes when nothing changes."""
        body = request.body
        changed = body["model"] != self.model
        if request.stream and self.usage and not request.wants_usage:
            changed = True
        if not changed:
            for old, _ in self.rename:
                if old in body:
                    changed = True
                    break
            else:
                changed = any(name in body for name in self.drop)
        if not changed:
            return request.raw
        if request.where is not None and request.text is not None and not any(name in body for name in self.drop):
            return self._splice(request, request.text, request.where)
        out = dict(body)
        out["model"] = self.model
        if request.stream and self.usage and not request.wants_usage:
            options = out.get("stream_options")
            out["stream_options"] = {**options, "include_usage": True} if options.__class__ is dict else {
                "include_usage": True}
        for old, new in self.rename:
            if old in out and new not in out:
                out[new] = out.pop(old)
        for name in self.drop:
            out.pop(name, None)
        return encode(out)

    def _splice(self, request: ChatRequest, text: str, where: dict[str, Span]) -> bytes:
        """The same changes as the whole encode makes, spliced into the caller's text."""
        body = request.body
        model_name, _, model_start, model_end = where["model"]
        edits = [(model_start, model_end, self.model_json)]
        if request.stream and self.usage and not request.wants_usage:
            options = body.get("stream_options")
            span = where.get("stream_options")
            if span is None:  # a member of its own, before the model's
                edits.append((model_name, model_name, _INCLUDE_USAGE))
            else:
                value = {**options, "include_usage": True} if options.__class__ is dict else {"include_usage": True}
                edits.append((span[2], span[3], encode(value).decode()))
        for old, new in self.rename:
            if old in body and new not in body:
                name, name_end, _, _ = where[old]
                edits.append((name, name_end, json.dumps(new)))
        return splice(text, edits).encode()
