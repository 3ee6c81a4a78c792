"""Turns what the probes saw into the endpoint's capability profile (`human/profile.py`),
which the client then reads. Pure: `learn(obs)` builds a `Profile`; saving it is the
prober's job.

Only a rejection (HTTP 400/422 while the same request without the field worked) makes a
capability False; anything else leaves it None (unknown), so a flaky server never teaches
the client to drop a parameter.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from ..profile import Profile
from .decide import Observations, Outcome, _fields, _fragment_shape, _rejects

__all__ = ["learn"]


def learn(obs: Observations) -> Profile | None:
    """The profile the observations support, or None when no chat succeeded (nothing
    was learned, and an older profile must not be overwritten with unknowns)."""
    target, out = obs.target, obs.outcomes
    if target is None:
        return None
    own, other = _fields(target)
    first, second, unlimited = out.get("token:" + own), out.get("token:" + other), out.get("token:none")
    if first is None or second is None or not any(o is not None and o.ok for o in (first, second, unlimited)):
        return None
    accepts = {own: _accepts(first, _rejects(first, own, second.ok)),
               other: _accepts(second, _rejects(second, other, first.ok))}
    stream, usage = out.get("stream"), out.get("stream usage")
    tool_stream = out.get("tool stream")
    index = ident = None
    if tool_stream is not None and tool_stream.ok and tool_stream.fragments:
        index, ident = _fragment_shape(tool_stream.fragments)
    return Profile(
        provider=target.provider,
        base_url=target.base_url,
        model=target.model,
        probed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        accepts_max_tokens=accepts["max_tokens"],
        accepts_max_completion_tokens=accepts["max_completion_tokens"],
        accepts_stream_options=_accepts(usage, usage.rejected) if usage else None,
        streams_usage=(usage.response.usage is not None) if usage and usage.ok and usage.response else None,
        accepts_content_parts=_accepts(out.get("content parts")),
        supports_tools=_accepts(out.get("tools")),
        tool_deltas_have_index=index,
        tool_deltas_have_id=ident,
        supports_json_object=_accepts(out.get("json_object")),
        supports_json_schema=_accepts(out.get("json_schema")),
        first_token_s=round(stream.first_token_s, 3) if stream and stream.first_token_s is not None else None,
        honours_json_object=_honours(out.get("json_object")),
        honours_json_schema=_honours(out.get("json_schema")),
        calls_tools=_calls(out.get("tools")),
    )


def _calls(outcome: Outcome | None) -> bool | None:
    """Whether the model called the probe's tool (None when the request failed)."""
    if outcome is None or not outcome.ok or outcome.response is None:
        return None
    return bool(outcome.response.tool_calls)


def _honours(outcome: Outcome | None) -> bool | None:
    """Whether an accepted response_format was also obeyed: True = the answer is JSON,
    False = prose (accepted and ignored, as aimock and many local setups do; the
    structured-output mode choice skips such a format), None = not accepted, or no
    telling (a tool call, or cut at the probe's token limit)."""
    if outcome is None or not outcome.ok or outcome.response is None:
        return None
    response = outcome.response
    try:
        json.loads(response.content or "")
        return True
    except ValueError:
        pass
    if response.tool_calls or response.finish_reason == "length":
        return None
    return False


def _accepts(outcome: Outcome | None, rejected: bool | None = None) -> bool | None:
    """True = accepted, False = rejected, None = unknown (not probed, or another failure)."""
    if outcome is None:
        return None
    if outcome.ok:
        return True
    return False if (outcome.rejected if rejected is None else rejected) else None

