"""The agent loop: `client.run()` asks the model, runs the tools it calls, and asks again
until it answers without tools.

    tools.py    Tool, the `tool` decorator: Python functions (sync or async) as tools
    plan.py     the loop's decisions, pure: a generator of CallModel / RunTools actions
    drive.py    RunStream and AsyncRunStream: the sync and async drivers of that plan
    emulate.py  tool calls by prompting, for endpoints without native tools
    result.py   RunResult, Step, ToolRun and the tool_start / tool_result events
    mcp.py      MCP servers as tools (the optional extra human[mcp])

`Client.run`, `Client.run_stream` and their `AsyncClient` twins are thin methods over
`drive.py`; everything here is imported only when a run starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .drive import AsyncRunStream, RunStream
from .mcp import MCPServer
from .result import RunResult, Step, ToolResultEvent, ToolRun, ToolStartEvent
from .tools import Tool, tool

__all__ = ["AsyncRunStream", "MCPServer", "RunResult", "RunStream", "Step", "Tool", "ToolResultEvent", "ToolRun",
           "ToolStartEvent", "run", "tool"]


def run(client: Any, messages: Any, *, tools: Sequence[Any] = (), **settings: Any) -> Any:
    """`human.run(client, messages, tools=[...])`: the same as `client.run(...)`, a
    RunResult from a `Client` and a coroutine from an `AsyncClient`."""
    return client.run(messages, tools=tools, **settings)
