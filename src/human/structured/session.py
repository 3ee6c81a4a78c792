"""One structured-output call as a state machine: which request to send next, and what
each answer means. Pure: no I/O; the drivers in `drive.py` send what it asks for.

    session = Session(spec, messages, options, mode, why)
    ask = session.ask()
    loop:
        response = client.chat(ask.messages, **ask.options)     # driver
          on HumanError e:  ask = session.rejected(e)          # a step down, or e raised
        result = session.answered(response)                    # an Ask (re-ask) or the answer

Rules, each from a peer's bug (wave2.md B.2):
- A re-ask is only for an answer that does not parse or validate. A transport failure
  is raised as it is: `chat()` already retried it by its own policy, and re-asking would
  multiply those retries (Pipelex/pipelex PR #918).
- A re-ask carries the original messages, the last failed answer and its problems, not
  every failed answer so far: the prompt stays the same size, so the cost of N re-asks
  grows linearly rather than quadratically (567-labs/instructor PR #2122, issue #2056).
- `finish_reason: "length"` with no valid JSON raises `TruncatedOutputError` at once:
  the same limit would cut the next answer too (openai-python's LengthFinishReasonError).
- Usage (and cost, once responses carry it) is summed over every attempt and reported on
  the answer and on the error (567-labs/instructor#341, #715); `token_budget` stops
  re-asking once that many tokens were spent.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

from ..core.extract import NoJSON, find_json, strip_reasoning
from ..core.partial import PartialJSON
from ..core.typeschema import Mismatch
from ..errors import HumanError, OutputAttempt, StructuredOutputError, TruncatedOutputError
from ..types import ChatResponse, ContentDelta, StreamEvent, ToolCall, ToolCallDelta, ToolCallDone, ToolCallStart, Usage
from . import modes
from .spec import OutputSpec

__all__ = ["Ask", "PartialReader", "Session", "total_usage"]

_lenient = json.JSONDecoder(strict=False).decode  # raw control characters inside strings: accepted
_SHOWN_PROBLEMS = 12  # a re-ask lists at most this many problems (the model fixes the rest next)


@dataclass(frozen=True, slots=True)
class Ask:
    """One request to send: `client.chat(messages, **options)`."""

    messages: list[dict[str, Any]]
    options: dict[str, Any]
    mode: str


class Session:
    """The decisions of one structured-output call (see the module docstring)."""

    def __init__(self, spec: OutputSpec, messages: Any, options: dict[str, Any], mode: str, why: str, *,
                 max_retries: int = 2, token_budget: int | None = None) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, not {max_retries!r}")
        if token_budget is not None and (isinstance(token_budget, bool) or not isinstance(token_budget, int)
                                         or token_budget <= 0):
            raise ValueError(f"token_budget must be a positive number of tokens or None, not {token_budget!r}")
        self.spec = spec
        self.mode = mode
        self._forced = why == modes.FORCED  # the caller's choice: kept, never stepped down from
        self.max_retries = max_retries
        self.token_budget = token_budget
        self.attempts: list[OutputAttempt] = []
        #: A mode this endpoint should be asked in from now on (the driver remembers it).
        self.learned: str | None = None
        self._messages = messages
        self._options = options
        self._notes = [f"structured output: {_label(mode)} mode, {why}"]
        self._responses: list[ChatResponse] = []
        self._followup: list[dict[str, Any]] = []
        self._reasks = 0

    @property
    def notes(self) -> list[str]:
        """What was decided so far, as `response.adjustments` will say it."""
        return list(self._notes)

    def ask(self) -> Ask:
        """The request to send now."""
        messages, options = modes.request(self.mode, self.spec, self._messages, self._options)
        return Ask(messages + self._followup, options, self.mode)

    def rejected(self, error: HumanError) -> Ask:
        """A request failed. A 400 refusing this mode's way of asking steps down the ladder
        (not counted as a re-ask: nothing was generated) unless the caller chose the mode;
        any other error is raised as is."""
        rejected = not self._forced and modes.is_rejection(error, self.mode)
        lower = modes.step_down(self.mode) if rejected else None
        if lower is None:
            raise error
        self._notes.append(f"structured output: stepped down from {_label(self.mode)} to {_label(lower)}: "
                           f"the endpoint rejected it ({_short(error)})")
        self.mode = self.learned = lower
        self._followup = []  # a tools-mode exchange would not fit another mode's request
        return self.ask()

    def answered(self, response: ChatResponse) -> Ask | ChatResponse:
        """The answer with `.parsed` set, or the re-ask to send; raises `StructuredOutputError`
        (or `TruncatedOutputError`) when there is nothing more to try."""
        raw, value, problems, prose, call = self._judge(response)
        self._responses.append(response)
        self.attempts.append(OutputAttempt(raw, tuple(problems), response.usage, self.mode,
                                           response.finish_reason))
        if not problems:
            return self._result(response, value)
        usage = total_usage([r.usage for r in self._responses])
        if response.finish_reason == "length":
            raise TruncatedOutputError(
                f"the answer stopped at the token limit (finish_reason \"length\") before its JSON was complete"
                f"{_reasoning_note(response)}; not re-asked, as the same limit would cut the next answer too",
                advice="raise max_tokens", attempts=self.attempts, usage=usage, response=response)
        if self._reasks >= self.max_retries:
            raise StructuredOutputError(
                f"no answer fitted {self._what()} after {len(self.attempts)} attempt(s) ({_label(self.mode)} mode); "
                f"the last one: {_problems(problems)}",
                advice="raise max_retries, simplify the type, or pass another mode= (every raw answer is in "
                       ".attempts)", attempts=self.attempts, usage=usage, response=response)
        spent = (usage.total_tokens or 0) if usage else 0
        if self.token_budget is not None and spent >= self.token_budget:
            raise StructuredOutputError(
                f"the token budget ({self.token_budget}) was spent after {len(self.attempts)} attempt(s) "
                f"({spent} tokens) and no answer fitted {self._what()}: {_problems(problems)}",
                attempts=self.attempts, usage=usage, response=response)
        if prose and self.mode in _ENFORCING and not self._forced and not _refused(response):
            # A server that enforces json_schema or a forced tool call cannot answer with
            # prose: this one ignores it.
            self._notes.append(f"structured output: the endpoint ignored {_ENFORCING[self.mode]} (the answer held "
                               "no JSON); asked again with the schema in the prompt")
            self.mode = self.learned = "prompt"
        self._reasks += 1
        self._followup = _reask(self.mode, raw, problems, call)
        return self.ask()

    # ---- judging one answer ------------------------------------------------------------------

    def _judge(self, response: ChatResponse) -> tuple[str | None, Any, list[str], bool, ToolCall | None]:
        """(raw answer, result, problems, prose without any JSON, the tool call answered)."""
        call = _our_call(response.tool_calls) if self.mode == "tools" else None
        if call is not None:
            raw: str | None = call.arguments
            try:
                value = _lenient(call.arguments.strip() or "{}")
            except ValueError as exc:
                problem = f"$: the arguments of {modes.TOOL_NAME} are not valid JSON ({_why(exc)})"
                return raw, None, [problem], False, call
        else:
            raw = response.content
            try:
                value = find_json(raw, None if self.spec.many else "object").value
            except NoJSON as exc:
                hint = f"; call {modes.TOOL_NAME} with the answer as its arguments" if self.mode == "tools" else ""
                prose = "{" not in strip_reasoning(raw or "")  # not even broken JSON: plain prose
                return raw, None, [f"$: {exc.reason}{hint}"], prose, None
        try:
            return raw, self.spec.convert(value), [], False, call
        except Mismatch as exc:
            return raw, None, list(exc.errors), False, call

    def _result(self, response: ChatResponse, value: Any) -> ChatResponse:
        notes = list(self._notes)
        if len(self._responses) > 1:
            notes.append(f"structured output: re-asked {self._reasks} time(s); usage is the total of "
                         f"{len(self._responses)} requests")
        changes: dict[str, Any] = {"parsed": value, "usage": total_usage([r.usage for r in self._responses]),
                                   "adjustments": (*response.adjustments, *notes)}
        # TODO(issue 12): when ChatResponse carries `cost`, the answer's cost is the sum over
        # every attempt, like its usage; this seam sets it as soon as the field exists.
        if "cost" in _FIELDS:
            costs = [getattr(r, "cost", None) for r in self._responses]
            changes["cost"] = None if any(c is None for c in costs) else sum(costs)
        return dataclasses.replace(response, **changes)

    def _what(self) -> str:
        target = self.spec.target
        if isinstance(target, dict):
            return f"the schema {self.spec.name!r}"
        if typing.get_origin(target) is not None:
            return str(target).replace("typing.", "")
        return getattr(target, "__name__", None) or str(target)


_FIELDS = frozenset(f.name for f in dataclasses.fields(ChatResponse))
_ENFORCING = {"json_schema_strict": "response_format json_schema (strict)",
              "json_schema": "response_format json_schema", "tools": "the forced tool call"}


def total_usage(usages: list[Usage | None]) -> Usage | None:
    """The field-by-field sum; a field no attempt reported stays None."""
    known = [u for u in usages if u is not None]
    if not known:
        return None
    if len(known) == 1:
        return known[0]

    def add(name: str) -> int | None:
        values = [getattr(u, name) for u in known if getattr(u, name) is not None]
        return sum(values) if values else None

    return Usage(*(add(f.name) for f in dataclasses.fields(Usage)))


# ---- streaming -------------------------------------------------------------------------------


class PartialReader:
    """Stream events in, partial values out (only complete fields; see `core.partial`)."""

    def __init__(self, spec: OutputSpec, mode: str) -> None:
        self._spec = spec
        self._json = PartialJSON(start="{[" if spec.many else "{")
        self._tools = mode == "tools"
        self._index: int | None = None
        self._fed = False

    def feed(self, event: StreamEvent) -> tuple[bool, Any]:
        """(changed, the partial value as the caller sees it)."""
        text: str | None = None
        if not self._tools:
            if isinstance(event, ContentDelta):
                text = event.text
        elif isinstance(event, ToolCallStart):
            if self._index is None and event.name in (modes.TOOL_NAME, ""):
                self._index = event.index
        elif isinstance(event, ToolCallDelta):
            if self._index is None:
                self._index = event.index
            if event.index == self._index:
                text = event.arguments
        elif isinstance(event, ToolCallDone) and not self._fed:  # a server that sent the call whole
            if event.tool_call.name == modes.TOOL_NAME:
                text = event.tool_call.arguments
        if not text:
            return False, None
        self._fed = True
        if not self._json.feed(text):
            return False, None
        return True, self._spec.unwrap_partial(self._json.snapshot())


# ---- helpers ---------------------------------------------------------------------------------


def _reask(mode: str, raw: str | None, problems: list[str], call: ToolCall | None) -> list[dict[str, Any]]:
    """The messages that follow the original ones in a re-ask: the failed answer, then what
    was wrong with it."""
    listed = "\n".join(f"- {problem}" for problem in problems[:_SHOWN_PROBLEMS])
    if len(problems) > _SHOWN_PROBLEMS:
        listed += f"\n- … and {len(problems) - _SHOWN_PROBLEMS} more"
    if mode == "tools" and call is not None and call.id:
        return [{"role": "assistant", "content": None, "tool_calls": [call.to_message()]},
                {"role": "tool", "tool_call_id": call.id,
                 "content": f"Not accepted; these arguments do not fit the schema:\n{listed}\n"
                            f"Call {modes.TOOL_NAME} again with corrected arguments."}]
    followup: list[dict[str, Any]] = []
    if raw and raw.strip():
        followup.append({"role": "assistant", "content": raw})
    again = (f"call {modes.TOOL_NAME} again with corrected arguments" if mode == "tools"
             else "answer again with only the corrected JSON object")
    followup.append({"role": "user", "content": f"That answer does not fit the required JSON Schema:\n{listed}\n"
                                                f"Please {again}."})
    return followup


def _our_call(calls: tuple[ToolCall, ...]) -> ToolCall | None:
    for call in calls:
        if call.name == modes.TOOL_NAME:
            return call
    return calls[0] if len(calls) == 1 else None  # a server that renamed the forced call


def _refused(response: ChatResponse) -> bool:
    """OpenAI's structured outputs answer a refusal in `message.refusal`, with no JSON."""
    raw = response.raw
    try:
        return bool(raw["choices"][0]["message"].get("refusal"))
    except (KeyError, IndexError, TypeError, AttributeError):
        return False


def _reasoning_note(response: ChatResponse) -> str:
    usage = response.usage
    if not (response.content or "").strip() and (response.reasoning or (usage and usage.reasoning_tokens)):
        spent = f" ({usage.reasoning_tokens} reasoning tokens)" if usage and usage.reasoning_tokens else ""
        return f": the model spent it all on reasoning{spent} and wrote no answer"
    return ""


def _label(mode: str) -> str:
    return "json_schema (strict)" if mode == "json_schema_strict" else mode


def _short(error: HumanError) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 160 else text[:160] + "…"


def _problems(problems: list[str]) -> str:
    shown = "; ".join(problems[:3])
    return shown + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


def _why(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)
