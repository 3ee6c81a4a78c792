"""What a run hands back: every step (the model's answer, the tool calls it asked for, what
each returned and how long it took), the final answer, the total usage and cost, and the
whole conversation to continue from. Also the two events `run_stream` adds to the chat
events: a tool starting and a tool's result.

    result = client.run("What is the weather in Oslo?", tools=[get_weather])
    result.content                    # the final answer
    result.messages                   # the conversation: pass it to the next run()
    for step in result.steps:         # one per model call
        for run in step.tools:        # one per tool call, in the order the model asked
            print(run.call.name, run.arguments, run.status, run.output, run.seconds)
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ..types import ChatResponse, StreamEvent, ToolCall, Usage

__all__ = ["USAGE_FIELDS", "RunEvent", "RunResult", "Step", "ToolResultEvent", "ToolRun", "ToolStartEvent",
           "add_costs", "add_counts", "add_usage"]

# ok        the tool returned; `value` is what it returned, `output` the text sent back
# error     the tool raised; `error` is the exception, `output` its text
# invalid   unknown tool, or arguments that are not valid JSON or do not fit the schema
# refused   the approve hook said no
# timeout   the tool did not finish within its timeout
# skipped   not run: repeated identically too often, turn limit reached, or the run stopped
Status = Literal["ok", "error", "invalid", "refused", "timeout", "skipped"]


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One tool call and its outcome. `output` is exactly what the model was sent back."""

    call: ToolCall
    status: Status
    output: str
    arguments: dict[str, Any] | None = None
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class Step:
    """One model call: its answer, how long it took, and the tool calls it led to."""

    response: ChatResponse
    seconds: float
    tools: tuple[ToolRun, ...] = ()
    emulated: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished (or, inside an error, a stopped) run.

    `messages` is the whole conversation, the caller's messages first; every tool call in
    it is answered by exactly one tool message, however the run ended. `usage` sums every
    model call; `cost` sums their costs (`ChatResponse.cost`) when every one is known, else
    None.
    """

    response: ChatResponse | None
    steps: tuple[Step, ...]
    messages: list[dict[str, Any]]
    usage: Usage
    cost: float | None = None
    adjustments: tuple[str, ...] = ()

    @property
    def content(self) -> str | None:
        return self.response.content if self.response is not None else None

    @property
    def text(self) -> str:
        return self.content or ""

    @property
    def tool_runs(self) -> list[ToolRun]:
        """Every tool call of the run, in order."""
        return [run for step in self.steps for run in step.tools]


@dataclass(frozen=True, slots=True)
class ToolStartEvent:
    """A tool call is about to run (after the approve hook said yes)."""

    type: ClassVar[Literal["tool_start"]] = "tool_start"
    call: ToolCall
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    """A tool call's outcome, including calls that were refused, invalid or not run."""

    type: ClassVar[Literal["tool_result"]] = "tool_result"
    run: ToolRun


RunEvent = StreamEvent | ToolStartEvent | ToolResultEvent


def add_usage(total: Usage, more: Usage | None) -> Usage:
    """`total` plus `more`, field by field; a field stays None only while no call reported it."""
    if more is None:
        return total
    return Usage(*map(_plus, _counts(total), _counts(more)))


def add_counts(counts: list[int | None], more: Usage) -> None:
    """Add `more` to running `counts` (in `USAGE_FIELDS` order), in place: a run adds one
    Usage per model call and builds the total once, at the end."""
    for index, value in enumerate(_counts(more)):
        if value is not None:
            total = counts[index]
            counts[index] = value if total is None else total + value


# Every count, however many Usage has (read once, in field order: a fast path per turn).
USAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Usage))
_counts = operator.attrgetter(*USAGE_FIELDS)


def add_costs(costs: list[Any]) -> Any:
    """The cost of a run: the sum of its answers' costs, or None when any is unknown (a
    total that leaves an unpriced answer out would be wrong without saying so). Costs are
    numbers, or objects with `amount` (and optional `input` / `output`) parts."""
    if not costs or any(cost is None for cost in costs):
        return None
    first = costs[0]
    if not hasattr(first, "amount"):
        return sum(costs)
    if len(costs) == 1:
        return first
    parts: dict[str, Any] = {"amount": sum(cost.amount for cost in costs)}
    for name in ("input", "output"):
        values = [getattr(cost, name, None) for cost in costs]
        if hasattr(first, name):
            parts[name] = None if None in values else sum(values)
    if hasattr(first, "source"):
        parts["source"] = f"the sum of {len(costs)} answers"
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(first, **parts)
    return parts["amount"]


def _plus(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else a + b
