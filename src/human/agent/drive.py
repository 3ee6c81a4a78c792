"""The two drivers of the agent loop: `RunStream` (sync: parallel calls on at most
`max_parallel` threads) and `AsyncRunStream` (async: one task per call, as many at once). They only carry out what
agent/plan.py decides: ask the model through the client, ask the approve hook, run the
tools, time them, hand the outcomes back. Written line for line alike, in the same order
with the same names, so a reviewer can lay them side by side; a change to one without
the other is a bug.

    stream = client.run_stream(messages, tools=[get_weather])
    for event in stream:                    # chat events, plus tool_start / tool_result
        ...
    stream.result                           # the RunResult
    stream.messages                         # the conversation, paired, even after a failure

`client.run()` is the same driver without chat events (the model is asked with `chat`,
not `stream`). MCP servers named for the run are opened before the first turn and closed
after the last (agent/mcp.py); a server already open (`with server:`) is left open.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from ..core.handle import AsyncStreamHandle, StreamHandle
from ..core.wire import normalize_messages
from ..profile import load_profile
from .emulate import ContentGate, parse_calls
from .mcp import aopen_servers, open_servers, resolve_servers
from .plan import CallModel, Plan, RunTools, Settings
from .result import RunEvent, RunResult, ToolResultEvent, ToolRun, ToolStartEvent
from .tools import Tool, as_tools

__all__ = ["AsyncRunStream", "RunStream", "prepare"]

_clock = time.perf_counter
_NO_SERVERS: Any = contextlib.nullcontext([])  # a run without MCP servers: nothing to open (reusable)


def prepare(client: Any, messages: Any, tools: Sequence[Tool], *, max_turns: int = 10, repeat_limit: int | None = 3,
            on_tool_error: Literal["return", "raise"] = "return",
            tool_mode: Literal["auto", "native", "emulate"] = "auto", **options: Any) -> Plan:
    """The plan of one run: the tools, and whether the endpoint is known to lack native
    tool calling (its config entry's `native_tools: false`, or the profile `human doctor`
    saved says tools were rejected)."""
    target = client.target(options.get("provider"), options.get("model"))
    reason = None
    if target.native_tools is False:
        reason = f"native_tools is false for provider {target.provider!r}"
    elif client._profiles and tools:
        profile = load_profile(target.provider, target.base_url, target.model)
        if profile is not None and profile.supports_tools is False:
            reason = "`human doctor` found that the endpoint rejects tools"
    settings = Settings(max_turns=max_turns, repeat_limit=repeat_limit, on_tool_error=on_tool_error,
                        tool_mode=tool_mode, emulate_reason=reason, options=options)
    return Plan(messages, tools, settings)


def _record(client: Any, plan: Plan, logged: int) -> int:
    """The one place where the steps finished since the last call (`plan.steps[logged:]`)
    are recorded; returns how many are. Each model call of a run goes through
    `client.chat` / `client.stream`, so the log store of issue 12 keeps it as an exchange
    of its own (the tool results are in the next exchange's messages); what a run adds on
    top (a run id tying its steps, tool timings) is written from here once that store
    has a place for it."""
    return len(plan.steps)


class _RunBase:
    """What both drivers of a run hold (the shell, `__iter__` to `until_done`, is
    core/handle.py's), and `.messages`. Each driver keeps its own signature: `approve`
    returns a bool for `RunStream`, and may return an awaitable for `AsyncRunStream`."""

    def __init__(self, client: Any, messages: Any, tools: Sequence[Any], mcp: Sequence[Any],
                 approve: Callable[[Any], Any] | None, max_parallel: int, tool_timeout: float | None,
                 stream: bool, settings: dict[str, Any]) -> None:
        self._client, self._messages, self._tools = client, messages, as_tools(tools)
        self._mcp = resolve_servers(mcp, client.config) if mcp else []
        self._approve, self._max_parallel, self._tool_timeout = approve, max(1, max_parallel), tool_timeout
        self._stream, self._settings = stream, settings
        self.plan: Plan | None = None
        self.result: RunResult | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.plan.messages if self.plan is not None else list(normalize_messages(self._messages))

    def _outcome(self) -> RunResult | None:
        return self.result


# ---- sync --------------------------------------------------------------------------------


class RunStream(_RunBase, StreamHandle[RunEvent, RunResult]):
    """A run, step by step: iterate for events; afterwards `.result` holds the RunResult.
    `.messages` is the conversation so far, every tool call answered, at any moment."""

    def __init__(self, client: Any, messages: Any, *, tools: Sequence[Any] = (), mcp: Sequence[Any] = (),
                 approve: Callable[[Any], bool] | None = None, max_parallel: int = 8,
                 tool_timeout: float | None = None, stream: bool = True, **settings: Any) -> None:
        super().__init__(client, messages, tools, mcp, approve, max_parallel, tool_timeout, stream, settings)

    def _events(self) -> Iterator[RunEvent]:
        client = self._client
        with open_servers(self._mcp) if self._mcp else _NO_SERVERS as mcp_tools:
            plan = self.plan = prepare(client, self._messages, [*self._tools, *mcp_tools], **self._settings)
            steps = plan.run()
            action = next(steps)
            logged = 0
            while True:
                try:
                    if isinstance(action, CallModel):
                        started = _clock()
                        if self._stream:
                            chat = client.stream(action.messages, **action.options)
                            gate = ContentGate() if action.emulated else None
                            for event in chat:
                                if gate is not None and event.type == "content":
                                    shown = gate.feed(event.text)
                                    if shown:
                                        yield _content(shown)
                                    continue
                                yield event
                            response = chat.response
                            if gate is not None and response is not None:
                                held = gate.finish(bool(parse_calls(response.content, plan.tools)[0]))
                                if held:
                                    yield _content(held)
                        else:
                            response = client.chat(action.messages, **action.options)
                        outcome: Any = (response, _clock() - started)
                    else:
                        yield from self._run_tools(action)
                        outcome = None
                except BaseException as exc:  # the plan answers open calls, then lets it through
                    action = steps.throw(exc)
                    continue
                try:
                    action = steps.send(outcome)
                except StopIteration as done:
                    _record(client, plan, logged)
                    self.result = done.value
                    return
                logged = _record(client, plan, logged)

    def _run_tools(self, action: RunTools) -> Iterator[RunEvent]:
        """Approve each call in order, then run the approved ones at once (at most
        max_parallel threads; a single sync call runs in this thread)."""
        ready: list[int] = []
        for position, job in enumerate(action.jobs):
            if self._approve is not None and not self._approve(job.call):
                yield ToolResultEvent(action.settle(position, "refused"))
                continue
            ready.append(position)
        for position in ready:
            yield ToolStartEvent(action.jobs[position].call, action.jobs[position].arguments)
        if not ready:
            return
        timeouts = {position: _timeout(action.jobs[position].tool, self._tool_timeout) for position in ready}
        if len(ready) == 1 and timeouts[ready[0]] is None and not action.jobs[ready[0]].tool.is_async:
            yield ToolResultEvent(_settled(action, ready[0], _timed(action.jobs[ready[0]].tool, action, ready[0])))
            return
        import queue
        import threading

        # Daemon threads, not a ThreadPoolExecutor: the executor joins its workers at exit,
        # so one hung tool (timed out, or Ctrl-C) would keep the program from ending.
        finished: queue.SimpleQueue[tuple[int, tuple[str, Any, float]]] = queue.SimpleQueue()
        slots = threading.BoundedSemaphore(self._max_parallel)

        def work(position: int) -> None:
            with slots:
                try:
                    outcome = _timed(action.jobs[position].tool, action, position)
                except BaseException as exc:  # noqa: BLE001 - Ctrl-C or SystemExit in a tool: hand it over
                    outcome = ("raise", exc, 0.0)
            finished.put((position, outcome))

        begun = _clock()
        for position in ready:
            threading.Thread(target=work, args=(position,), name="human-tool", daemon=True).start()
        pending = set(ready)
        while pending:
            waits = [begun + limit - _clock() for p in pending if (limit := timeouts[p]) is not None]
            try:
                position, outcome = finished.get(timeout=max(0.0, min(waits)) if waits else None)
            except queue.Empty:
                position = -1
            if position in pending:
                pending.discard(position)
                if outcome[0] == "raise":
                    raise outcome[1]
                yield ToolResultEvent(_settled(action, position, outcome))
            for late in [p for p in pending if _expired(begun, timeouts[p])]:
                pending.discard(late)  # its thread cannot be stopped; its result is dropped
                yield ToolResultEvent(action.settle(late, "timeout", seconds=_clock() - begun,
                                                    timeout=timeouts[late]))


def _timed(tool: Tool, action: RunTools, position: int) -> tuple[str, Any, float]:
    started = _clock()
    try:
        value = tool.invoke(action.jobs[position].arguments)
    except Exception as exc:  # noqa: BLE001 - any failure of the tool goes back to the model
        return "error", exc, _clock() - started
    return "ok", value, _clock() - started


# ---- async -------------------------------------------------------------------------------


class AsyncRunStream(_RunBase, AsyncStreamHandle[RunEvent, RunResult]):
    """The async twin of `RunStream`: `async for` the events; `approve` may be async."""

    def __init__(self, client: Any, messages: Any, *, tools: Sequence[Any] = (), mcp: Sequence[Any] = (),
                 approve: Callable[[Any], Any] | None = None, max_parallel: int = 8,
                 tool_timeout: float | None = None, stream: bool = True, **settings: Any) -> None:
        super().__init__(client, messages, tools, mcp, approve, max_parallel, tool_timeout, stream, settings)

    async def _events(self) -> AsyncIterator[RunEvent]:
        client = self._client
        async with aopen_servers(self._mcp) if self._mcp else _NO_SERVERS as mcp_tools:
            plan = self.plan = prepare(client, self._messages, [*self._tools, *mcp_tools], **self._settings)
            steps = plan.run()
            action = next(steps)
            logged = 0
            while True:
                try:
                    if isinstance(action, CallModel):
                        started = _clock()
                        if self._stream:
                            chat = client.stream(action.messages, **action.options)
                            gate = ContentGate() if action.emulated else None
                            async for event in chat:
                                if gate is not None and event.type == "content":
                                    shown = gate.feed(event.text)
                                    if shown:
                                        yield _content(shown)
                                    continue
                                yield event
                            response = chat.response
                            if gate is not None and response is not None:
                                held = gate.finish(bool(parse_calls(response.content, plan.tools)[0]))
                                if held:
                                    yield _content(held)
                        else:
                            response = await client.chat(action.messages, **action.options)
                        outcome: Any = (response, _clock() - started)
                    else:
                        async for event in self._run_tools(action):
                            yield event
                        outcome = None
                except BaseException as exc:  # the plan answers open calls, then lets it through
                    action = steps.throw(exc)
                    continue
                try:
                    action = steps.send(outcome)
                except StopIteration as done:
                    _record(client, plan, logged)
                    self.result = done.value
                    return
                logged = _record(client, plan, logged)

    async def _run_tools(self, action: RunTools) -> AsyncIterator[RunEvent]:
        """Approve each call in order, then run the approved ones at once (one task each,
        at most max_parallel at a time; a sync function runs in a worker thread)."""
        ready: list[int] = []
        for position, job in enumerate(action.jobs):
            if self._approve is not None and not await _approved(self._approve, job.call):
                yield ToolResultEvent(action.settle(position, "refused"))
                continue
            ready.append(position)
        for position in ready:
            yield ToolStartEvent(action.jobs[position].call, action.jobs[position].arguments)
        if not ready:
            return
        timeouts = {position: _timeout(action.jobs[position].tool, self._tool_timeout) for position in ready}
        import asyncio

        limit = asyncio.Semaphore(self._max_parallel)
        tasks = {asyncio.ensure_future(_atimed(action.jobs[position].tool, action, position, limit,
                                               timeouts[position])): position for position in ready}
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield ToolResultEvent(_settled(action, tasks[task], task.result()))
        finally:
            for task in pending:
                task.cancel()


async def _atimed(tool: Tool, action: RunTools, position: int, limit: Any,
                  timeout: float | None) -> tuple[str, Any, float]:
    import asyncio

    started = _clock()
    try:
        async with limit:
            started = _clock()
            value = await asyncio.wait_for(tool.ainvoke(action.jobs[position].arguments), timeout)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        if timeout is not None and _clock() - started >= timeout * 0.99:
            return "timeout", timeout, _clock() - started
        return "error", exc, _clock() - started  # the tool itself raised a TimeoutError
    except Exception as exc:  # noqa: BLE001 - any failure of the tool goes back to the model
        return "error", exc, _clock() - started
    return "ok", value, _clock() - started


async def _approved(approve: Callable[[Any], Any], call: Any) -> bool:
    verdict = approve(call)
    if hasattr(verdict, "__await__"):
        verdict = await verdict
    return bool(verdict)


# ---- shared by both ----------------------------------------------------------------------


def _settled(action: RunTools, position: int, outcome: tuple[str, Any, float]) -> ToolRun:
    status, value, seconds = outcome
    if status == "ok":
        return action.settle(position, "ok", value=value, seconds=seconds)
    if status == "timeout":
        return action.settle(position, "timeout", seconds=seconds, timeout=value)
    return action.settle(position, "error", error=value, seconds=seconds)


def _timeout(tool: Tool, default: float | None) -> float | None:
    return tool.timeout if tool.timeout is not None else default


def _expired(begun: float, timeout: float | None) -> bool:
    return timeout is not None and _clock() - begun >= timeout


def _content(text: str) -> Any:
    from ..types import ContentDelta

    return ContentDelta(text)
