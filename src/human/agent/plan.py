"""The agent loop's decisions, written once: a generator of actions that the sync and the
async driver (agent/drive.py) carry out, as core/retry.py's Plan is for the clients.
Pure: no I/O, no clock, no threads.

    steps = Plan(messages, tools, settings).run()
    action = next(steps)                    # CallModel or RunTools
    while True:
        outcome = perform(action)           # CallModel: (response, seconds)
                                            # RunTools: None, after action.settle() per job
        action = steps.send(outcome)        # StopIteration(value=RunResult) at the end
    # A failure while performing is thrown in, `steps.throw(exc)`: the plan answers every
    # open tool call, then lets it through (or, for a 400 that names tools, switches to
    # emulated tools and yields the same turn again).

Decided here, and only here:
- turns: the model is asked at most `max_turns` times. If it still wants tools after the
  last, those calls are answered "not run" and MaxTurnsError carries the conversation.
- pairing: every tool call in `messages` has exactly one tool message, whatever stops the
  run (an exception, a refusal, a timeout, the turn limit, Ctrl-C): an assistant message
  is appended together with all its results, never alone (unpaired ids are a 400 almost
  everywhere: QwenLM/qwen-code#606, BerriAI/litellm#28995, agno-agi/agno#4345).
- ids: a call without an id, or with an id seen before in the conversation, gets a fresh
  one, so no two tool messages can answer the same id.
- bad calls (an unknown tool, arguments that are not JSON or do not fit) go back to the
  model as errors it can fix; a tool that raises does too, unless on_tool_error="raise"
  (kyegomez/swarms#1963: a swallowed error makes the model repeat the call).
- repeats: a call identical (same tool, same arguments) to the `repeat_limit - 1` calls
  before it is not run; the model is told to change approach (earendil-works/pi#9637,
  HKUDS/nanobot#2298, anomalyco/opencode#28596 halt at 3).
- tool_choice holds for the first turn only: "required" on every turn never ends
  (openai-agents' reset_tool_choice does the same).
- emulation (agent/emulate.py) when the settings say the endpoint has no native tools,
  or it answers 400 naming tools; tool_choice and parallel_tool_calls are then dropped.
  Each such change is an adjustment on the result, never silent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.typeschema import Mismatch
from ..core.wire import normalize_messages
from ..errors import BadRequestError, MaxTurnsError, ToolArgumentsError, ToolRunError
from ..types import ChatResponse, ToolCall, Usage, tool_result
from .emulate import names_tools, parse_calls, project
from .result import USAGE_FIELDS, RunResult, Status, Step, ToolRun, add_costs, add_counts
from .tools import Tool, render_output

__all__ = ["CallModel", "Job", "Plan", "RunTools", "Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """How a run behaves (see `human.Client.run` for each setting's meaning)."""

    max_turns: int = 10
    repeat_limit: int | None = 3
    on_tool_error: Literal["return", "raise"] = "return"
    tool_mode: Literal["auto", "native", "emulate"] = "auto"
    emulate_reason: str | None = None  # why the endpoint is known to lack tools (config, profile)
    options: Mapping[str, Any] = field(default_factory=dict)  # chat options for every turn

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, not {self.max_turns}")
        if self.on_tool_error not in ("return", "raise"):
            raise ValueError(f"on_tool_error must be 'return' or 'raise', not {self.on_tool_error!r}")
        if self.tool_mode not in ("auto", "native", "emulate"):
            raise ValueError(f"tool_mode must be 'auto', 'native' or 'emulate', not {self.tool_mode!r}")


@dataclass(slots=True)
class CallModel:
    """Ask the model: send `messages` with `options` (tools included, unless emulated)."""

    messages: list[dict[str, Any]]
    options: dict[str, Any]
    turn: int
    emulated: bool


@dataclass(slots=True)  # not frozen: made for every call, and a frozen __init__ costs twice as much
class Job:
    """One tool call to run: `index` is its place among the turn's calls."""

    index: int
    call: ToolCall
    tool: Tool
    arguments: dict[str, Any]


@dataclass(slots=True)
class RunTools:
    """Run these calls (approve each first). The driver records each outcome with
    `settle()` as it comes, so a run stopped half way knows which calls finished."""

    jobs: list[Job]
    turn: int
    runs: list[ToolRun | None]

    def settle(self, position: int, status: Status, *, value: Any = None, error: BaseException | None = None,
               seconds: float = 0.0, timeout: float | None = None) -> ToolRun:
        """Record the outcome of `jobs[position]` and return it as a `ToolRun`."""
        job = self.jobs[position]
        if status == "ok":
            try:
                output = render_output(value)
            except (TypeError, ValueError) as exc:  # e.g. a value that refers to itself
                status, error, output = "error", exc, f"error: the tool's result cannot be sent as JSON: {exc}"
        elif status == "error":
            output = f"error: {_describe(error)}"
        elif status == "refused":
            output = "not run: the user declined this call"
        elif status == "timeout":
            output = f"error: the tool did not finish within {timeout:g} s" if timeout else "error: timed out"
        else:
            output = f"not run: {_describe(error) if error is not None else 'skipped'}"
        run = ToolRun(job.call, status, output, job.arguments, value if status == "ok" else None, error, seconds)
        self.runs[position] = run
        return run


class Plan:
    """One run's state: the conversation (always paired), the steps, usage, adjustments."""

    def __init__(self, messages: Any, tools: Sequence[Tool], settings: Settings) -> None:
        self.messages: list[dict[str, Any]] = list(normalize_messages(messages))
        self.tools = {tool.name: tool for tool in tools}
        self.settings = settings
        self.steps: list[Step] = []
        self.adjustments: list[str] = []
        self._counts: list[int | None] = [None] * len(USAGE_FIELDS)  # token counts so far, Usage's order
        self._schemas = [tool.schema() for tool in tools]
        self._options = dict(settings.options)  # what is sent each turn, less what the endpoint refused
        self._ids = {item.get("id") for m in self.messages for item in m.get("tool_calls") or () if
                     isinstance(item, Mapping)}
        self._last: ToolCall | None = None  # the previous call, for the repeat guard
        self._repeats = 0
        self.emulated = bool(self._schemas) and (settings.tool_mode == "emulate" or (
            settings.tool_mode == "auto" and settings.emulate_reason is not None))
        if self.emulated:
            self._adjust(f"tools emulated by prompting: {settings.emulate_reason or 'tool_mode is emulate'}")

    # ---- the loop ---------------------------------------------------------------------------

    def run(self) -> Generator[CallModel | RunTools, Any, RunResult]:
        settings = self.settings
        turn = 0
        while True:
            turn += 1
            try:
                response, seconds = yield self._call(turn)
            except BadRequestError as exc:
                if not self._fall_back(exc):
                    raise
                turn -= 1
                continue
            calls, content = self._calls_of(response)
            if not calls:
                self.messages.append(response.to_message())
                self._record(response, seconds, ())
                return self.result(response)
            calls = self._identified(calls, turn)
            message = self._assistant(response, content, calls)
            if turn >= settings.max_turns:
                why = f"the run reached its turn limit (max_turns={settings.max_turns})"
                self._commit(message, [_skipped(call, why) for call in calls], response, seconds)
                raise MaxTurnsError(
                    f"the model still asked for tools after {settings.max_turns} turns (max_turns); "
                    "error.messages holds the conversation: pass it to run() again to go on",
                    result=self.result(response))
            runs: list[ToolRun | None] = [None] * len(calls)
            jobs: list[Job] = []
            for index, call in enumerate(calls):
                screened = self._screen(index, call)
                if isinstance(screened, Job):
                    jobs.append(screened)
                else:
                    runs[index] = screened
            if jobs:
                batch = RunTools(jobs, turn, [None] * len(jobs))
                try:
                    yield batch
                except BaseException as exc:
                    for position, job in enumerate(jobs):
                        runs[job.index] = batch.runs[position] or batch.settle(
                            position, "skipped", error=_Stopped(exc))
                    self._commit(message, runs, response, seconds)
                    raise
                for position, job in enumerate(jobs):
                    runs[job.index] = batch.runs[position] or batch.settle(position, "skipped")
            done = self._commit(message, runs, response, seconds)
            failed = next((run for run in done if run.status == "error" and run.error is not None), None)
            if failed is not None and settings.on_tool_error == "raise":
                raise ToolRunError(f"tool {failed.call.name!r} failed: {_describe(failed.error)} "
                                   "(on_tool_error='raise'); error.messages holds the conversation so far",
                                   call=failed.call, result=self.result(response)) from failed.error

    def result(self, response: ChatResponse | None) -> RunResult:
        cost = add_costs([getattr(step.response, "cost", None) for step in self.steps])
        return RunResult(response, tuple(self.steps), self.messages, self.usage, cost, tuple(self.adjustments))

    # ---- one turn ---------------------------------------------------------------------------

    def _call(self, turn: int) -> CallModel:
        options = dict(self._options)
        if turn > 1:
            options.pop("tool_choice", None)
        if self.emulated:
            dropped = [name for name in ("tool_choice", "parallel_tool_calls") if options.pop(name, None) is not None]
            for name in dropped:
                self._adjust(f"dropped {name} (tools are emulated)")
            return CallModel(project(self.messages, self._schemas), options, turn, True)
        if self._schemas:
            options["tools"] = self._schemas
        return CallModel(self.messages, options, turn, False)

    def _fall_back(self, exc: BadRequestError) -> bool:
        """After a 400: leave out a parallel_tool_calls the endpoint rejects (OpenAI's
        o-series, Ollama through LiteLLM: run-llama/llama_index#20865,
        arbs-io/github-copilot-llm-gateway#79), or switch to emulated tools when it says
        it takes none. True when the turn is to be asked again."""
        if "parallel_tool_calls" in self._options and (
                exc.param == "parallel_tool_calls" or "parallel_tool_calls" in exc.message):
            del self._options["parallel_tool_calls"]
            self._adjust("dropped parallel_tool_calls (the endpoint rejects it)")
            return True
        if self.emulated or self.settings.tool_mode != "auto" or not self._schemas:
            return False
        if not names_tools(exc.param, exc.message):
            return False
        self.emulated = True
        self._adjust(f"tools emulated by prompting: the endpoint rejected native tools ({exc.message[:160]})")
        return True

    def _calls_of(self, response: ChatResponse) -> tuple[list[ToolCall], str | None]:
        if response.tool_calls:  # native calls win, also from a server we emulate tools for
            return list(response.tool_calls), response.content
        if self.emulated:
            return parse_calls(response.content, self.tools)
        if self._schemas and response.content and response.content.lstrip()[:1] in _CALL_STARTS:
            calls, content = parse_calls(response.content, self.tools, only=True)
            if calls:
                self._adjust("read a tool call the server left in the answer's text (its chat template's "
                             "tool-call format was not parsed into tool_calls)")
                return calls, content
        return [], response.content

    def _identified(self, calls: list[ToolCall], turn: int) -> list[ToolCall]:
        """Every call with an id no other call in the conversation has."""
        out = []
        for index, call in enumerate(calls):
            if not call.id or call.id in self._ids:
                fresh, n = f"call_{turn}_{index}", 0
                while fresh in self._ids:
                    n += 1
                    fresh = f"call_{turn}_{index}_{n}"
                call = dataclasses.replace(call, id=fresh)
            self._ids.add(call.id)
            out.append(call)
        return out

    def _assistant(self, response: ChatResponse, content: str | None, calls: list[ToolCall]) -> dict[str, Any]:
        if content == response.content and tuple(calls) == response.tool_calls:
            return response.to_message()
        return dataclasses.replace(response, content=content, tool_calls=tuple(calls)).to_message()

    def _screen(self, index: int, call: ToolCall) -> ToolRun | Job:
        """A Job to run, or the answer of a call that will not run."""
        self._repeats = self._repeats + 1 if self._same_as_last(call) else 1
        self._last = call
        limit = self.settings.repeat_limit
        if limit and self._repeats >= limit:
            return _skipped(call, f"this is call number {self._repeats} in a row to {call.name} with the same "
                                      "arguments; its result will not change. Use the results you have, or try a "
                                      "different tool or different arguments")
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return _invalid(call, f"there is no tool named {call.name!r}; the tools are: {known}")
        try:
            arguments = tool.arguments(call.parsed_arguments())
        except ToolArgumentsError as exc:
            return _invalid(call, f"{exc}; send the arguments as one JSON object that fits the tool's schema")
        except Mismatch as exc:
            return _invalid(call, f"the arguments do not fit {call.name}'s parameters: {'; '.join(exc.errors)}")
        return Job(index, call, tool, arguments)

    def _same_as_last(self, call: ToolCall) -> bool:
        """Same tool, same arguments (as JSON values: key order and spacing do not count)."""
        last = self._last
        if last is None or last.name != call.name:
            return False
        return last.arguments == call.arguments or _canonical(last.arguments) == _canonical(call.arguments)

    def _commit(self, message: dict[str, Any], runs: Sequence[ToolRun | None], response: ChatResponse,
                seconds: float) -> list[ToolRun]:
        """Append the assistant message and one tool message per call, together."""
        done = [run for run in runs if run is not None]
        assert len(done) == len(runs), "every call is answered before the turn is committed"
        self.messages.append(message)
        self.messages.extend(tool_result(str(run.call.id), run.output) for run in done)
        self._record(response, seconds, tuple(done))
        return done

    @property
    def usage(self) -> Usage:
        """The token counts of every model call so far, summed."""
        return Usage(*self._counts)

    def _record(self, response: ChatResponse, seconds: float, runs: tuple[ToolRun, ...]) -> None:
        self.steps.append(Step(response, seconds, runs, self.emulated))
        if response.usage is not None:
            add_counts(self._counts, response.usage)

    def _adjust(self, text: str) -> None:
        if text not in self.adjustments:
            self.adjustments.append(text)


# How an answer that is really a tool call starts: JSON, a fence, or a template's wrapper.
_CALL_STARTS = frozenset("{[`<")


def _skipped(call: ToolCall, why: str) -> ToolRun:
    return ToolRun(call, "skipped", f"not run: {why}")


def _invalid(call: ToolCall, why: str) -> ToolRun:
    return ToolRun(call, "invalid", f"error: {why}")


class _Stopped(Exception):
    """Why a call was not run: the run stopped with `cause` before it finished."""

    def __init__(self, cause: BaseException) -> None:
        kind = "interrupted" if isinstance(cause, KeyboardInterrupt) else f"{type(cause).__name__}"
        super().__init__(f"the run stopped ({kind}) before this call finished")


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "failed"
    if isinstance(error, _Stopped):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        return arguments.strip()
