"""A tiny MCP server for the tests, written with the official `mcp` package.

    python tests/fakes/mcp_server.py                  # stdio
    python tests/fakes/mcp_server.py http PORT        # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: add(a, b); fail() (the tool raises: an isError result); slow(seconds) (sleeps);
dotted.name (a name OpenAI would refuse); secret_admin (for deny filters); grow() (adds
a tool named `grown`, to show the tool list is cached until refresh()).
"""

from __future__ import annotations

import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("human-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("the tool failed on purpose")


@server.tool()
def slow(seconds: float) -> str:
    """Sleeps, then answers."""
    time.sleep(seconds)
    return "slept"


@server.tool(name="dotted.name")
def dotted() -> str:
    """A name with a dot."""
    return "dotted"


@server.tool()
def secret_admin() -> str:
    """Should be denied."""
    return "admin"


@server.tool()
def grow() -> str:
    """Adds a tool named grown."""

    def grown() -> str:
        """Added at run time."""
        return "grown"

    server.add_tool(grown)
    return "added"


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
