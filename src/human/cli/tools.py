"""`human chat` with tools: the agent loop on the terminal.

    human chat --functions tools.py "What is the weather in Oslo?"
    human chat --mcp files --tools-approve "Tidy up /tmp/notes"
    human chat --functions tools.py --chain-limit 3          # interactive, with tools

--functions FILE.py   every public function defined in the file is a tool (a function
                      decorated with @human.tool keeps its settings); repeatable; a
                      string of Python code works too, as in simonw/llm's --functions
--mcp NAME            the tools of a server in the config's mcp_servers; repeatable
--tools-approve       ask y/n on the terminal before each call (a refusal is told to the
                      model); reads /dev/tty, so it works with a piped prompt
--chain-limit N       at most N model calls per prompt (default 10; 0: no limit)

Tool calls and their results are shown dimmed on stderr as they happen; the answer
streams to stdout as usual. After an interrupted or failed turn the conversation keeps
every tool call answered, so the next prompt can go on from it.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .output import Output

if TYPE_CHECKING:
    from ..agent import RunStream
    from ..client import Client
    from ..types import ToolCall
    from .turn import Settings

__all__ = ["Tools", "ask_with_tools", "load_functions"]

SHOWN = 300  # characters of a tool result shown on the terminal (the model gets all of it)


@dataclass
class Tools:
    """What `--functions`, `--mcp`, `--tools-approve` and `--chain-limit` asked for."""

    functions: list[Any] = field(default_factory=list)
    mcp: list[str] = field(default_factory=list)
    approve: bool = False
    chain_limit: int = 10

    def __bool__(self) -> bool:
        return bool(self.functions or self.mcp)


def load_functions(sources: list[str]) -> list[Any]:
    """The tools each `--functions` source defines: its public functions, in file order."""
    found: list[Any] = []
    for number, source in enumerate(sources):
        path = Path(source)
        if path.is_file():
            code, label = path.read_text(encoding="utf-8"), str(path)
        elif "def " in source and not source.endswith(".py"):
            code, label = source, "<--functions>"
        else:
            raise ConfigError(f"--functions {source}: no such file (give a .py file, or Python code that defines "
                              "functions)")
        name = f"human_functions_{number}"
        module = types.ModuleType(name)
        module.__file__ = label
        sys.modules[name] = module  # type hints are resolved against the function's module
        try:
            exec(compile(code, label, "exec"), module.__dict__)  # noqa: S102 - the user's own tools file
        except SyntaxError as exc:
            raise ConfigError(f"--functions {label}: line {exc.lineno}: {exc.msg}") from None
        defined = [value for key, value in vars(module).items() if not key.startswith("_") and _is_tool(value, name)]
        if not defined:
            raise ConfigError(f"--functions {label} defines no public function to use as a tool")
        found += defined
    return found


def ask_with_tools(client: Client, messages: list[dict[str, Any]], settings: Settings, tools: Tools,
                   out: Output, started: list[RunStream] | None = None) -> RunStream | None:
    """One prompt through the agent loop; returns the run (its `.messages` go on the
    conversation) or None for a dry run. The run is also put in `started` before it
    begins, so a caller still has its `.messages` when it fails or is interrupted."""
    options = {**settings.options(), "provider": settings.provider, "model": settings.model,
               "timeout": settings.timeout}
    if settings.dry_run:
        from ..agent.tools import as_tools

        schemas = [tool.schema() for tool in as_tools(tools.functions)]
        out.json(client.dry_run(messages, stream=settings.streaming, tools=schemas or None,
                                **{k: v for k, v in options.items() if k != "timeout"}))
        if tools.mcp:
            out.info("human: note: a dry run does not start MCP servers; their tools are not shown")
        return None
    run = client.run_stream(messages, tools=tools.functions, mcp=tools.mcp, stream=settings.streaming,
                            max_turns=tools.chain_limit or sys.maxsize,
                            approve=_terminal_approver(out) if tools.approve else None, **options)
    if started is not None:
        started.append(run)
    thinking = False
    try:
        for event in run:
            if event.type == "content":
                if thinking:
                    out.reasoning("\n")
                    thinking = False
                out.write(event.text)
            elif event.type == "reasoning" and settings.reasoning:
                out.reasoning(event.text)
                thinking = True
            elif event.type == "tool_start":
                out.dim(f"→ {event.call.name}({event.call.arguments})")
            elif event.type == "tool_result":
                out.dim(f"← {event.run.call.name}: {_shown(event.run.status, event.run.output)}")
    finally:
        run.close()
        out.clear_status()
    result = run.result
    assert result is not None
    if not settings.streaming and not settings.json:
        out.write(result.text)
    out.newline_if_needed()
    for adjustment in result.adjustments:
        out.once(f"human: note: {adjustment}")
    if settings.json:
        out.json({**(result.response.to_dict() if result.response else {}), "usage": _usage(result.usage),
                  "tool_runs": [{"id": r.call.id, "name": r.call.name, "arguments": r.call.arguments,
                                 "status": r.status, "output": r.output, "seconds": round(r.seconds, 3)}
                                for r in result.tool_runs]})
    if settings.usage:
        usage = result.usage
        calls, runs = len(result.steps), len(result.tool_runs)
        out.info(f"usage: prompt {usage.prompt_tokens}, completion {usage.completion_tokens}, total "
                 f"{usage.total_tokens} · {calls} model call{'s' * (calls != 1)}, {runs} tool call{'s' * (runs != 1)}")
    return run


def _terminal_approver(out: Output) -> Callable[[ToolCall], bool]:
    """y/n on the terminal: stdin when it is one, else the controlling terminal (/dev/tty),
    so a piped prompt can still be approved."""
    if sys.stdin is not None and sys.stdin.isatty():
        reader, writer = sys.stdin, sys.stderr
    else:
        try:
            reader = writer = open("/dev/tty", "r+", encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError:
            raise ConfigError("--tools-approve needs a terminal to ask on; run it in one, or leave the flag "
                              "out") from None

    def approve(call: ToolCall) -> bool:
        out.clear_status()
        out.newline_if_needed()
        writer.write(out.clean(f"Run {call.name}({call.arguments})? [y/N] "))
        writer.flush()
        answer = reader.readline()
        return answer.strip().lower() in ("y", "yes")

    return approve


def _shown(status: str, output: str) -> str:
    text = " ".join(output.split())
    if len(text) > SHOWN:
        text = f"{text[:SHOWN]}… ({len(output)} characters)"
    return text if status == "ok" else f"[{status}] {text}"


def _usage(usage: Any) -> dict[str, Any]:
    return {name: getattr(usage, name) for name in ("prompt_tokens", "completion_tokens", "total_tokens",
                                                     "cached_tokens", "reasoning_tokens")}


def _is_tool(value: Any, module: str) -> bool:
    from ..agent.tools import Tool

    if isinstance(value, Tool):
        return True
    return inspect.isfunction(value) and value.__module__ == module
