"""MCP servers as tools: the optional extra `human[mcp]` (the official `mcp` package,
imported only here, only when a server is opened).

    weather = human.MCPServer.stdio("python", ["weather_server.py"], name="weather")
    client.run("Weather in Oslo?", mcp=[weather])    # opened for this run, closed after it
    with weather:                                     # or open once, for many runs
        client.run(..., mcp=[weather])
    client.run(..., mcp=["files"])                    # a server from the config's mcp_servers

Every session lives on one background event-loop thread shared by the process, in one
long-lived task per server. MCP sessions are anyio task groups that must be entered and
left by the same task, and the sync client has no event loop at all; both drivers call
tools through that thread (the sync one waits on a future, the async one awaits it).

Settings, in code or in the config's `mcp_servers` (config.schema.json):

    timeout          seconds per tool call, default 60 (peers hard-coded 5 s and users hit
                     it: openai/openai-agents-python#1024, #1892)
    startup_timeout  seconds to start, connect and list the tools, default 30 (list_tools
                     can hang on a stdio server: microsoft/autogen#6468)
    prefix           put before each tool name the model sees (two servers, one name)
    allow / deny     tool names or fnmatch patterns (142 tools cost ~93k tokens of context
                     on every call: knowsuchagency/mcp2cli#1)

The tool list is read once per server object and kept (per server, not global:
UKGovernmentBEIS/inspect_ai PR #1807); `refresh()` reads it again. A tool's arguments are
checked by the server (its schemas may use any JSON Schema keyword); an `isError` result
goes back to the model as an error, like a Python tool that raised.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MCPServerError
from .tools import Tool

if TYPE_CHECKING:
    from concurrent.futures import Future  # imported when a server is opened, not with the agent

__all__ = ["MCPServer", "aopen_servers", "open_servers", "resolve_servers"]

log = logging.getLogger("human.mcp")

DEFAULT_TIMEOUT = 60.0
DEFAULT_STARTUP_TIMEOUT = 30.0
_INSTALL = "MCP servers need the mcp package: pip install 'human[mcp]'"


class MCPCallError(Exception):
    """An MCP tool answered with `isError`; the text is what the server said."""


class MCPServer:
    """One MCP server: how to reach it (a command over stdio, or a streamable-HTTP URL),
    its limits and which of its tools to offer."""

    def __init__(self, name: str, *, command: str | None = None, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, cwd: str | None = None, url: str | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 startup_timeout: float = DEFAULT_STARTUP_TIMEOUT, prefix: str = "",
                 allow: Sequence[str] | None = None, deny: Sequence[str] = ()) -> None:
        if (command is None) == (url is None):
            raise ConfigError(f"MCP server {name!r} needs either a command (stdio) or a url (streamable HTTP)")
        self.name = name
        self.command, self.args, self.env, self.cwd = command, list(args), dict(env or {}), cwd
        self.url, self.headers = url, dict(headers or {})
        self.timeout, self.startup_timeout = timeout, startup_timeout
        self.prefix, self.allow, self.deny = prefix, list(allow) if allow is not None else None, list(deny)
        self._session: Any = None
        self._stop: Any = None  # the asyncio.Event that ends the session task
        self._task: Future[None] | None = None
        self._listed: list[Any] | None = None  # the server's tools, read once (refresh() again)
        self._lock = threading.Lock()

    @classmethod
    def stdio(cls, command: str, args: Sequence[str] = (), *, name: str | None = None, **settings: Any) -> MCPServer:
        """A server started as a subprocess that speaks MCP on stdin/stdout."""
        return cls(name or os.path.basename(command), command=command, args=args, **settings)

    @classmethod
    def http(cls, url: str, *, name: str | None = None, **settings: Any) -> MCPServer:
        """A server reached over streamable HTTP at `url`."""
        return cls(name or url, url=url, **settings)

    @classmethod
    def from_config(cls, name: str, settings: Mapping[str, Any], env: Mapping[str, str]) -> MCPServer:
        """A server from the config's `mcp_servers[name]` (already checked by the schema)."""
        headers = dict(settings.get("headers", {}))
        token_var = settings.get("token_env")
        if token_var:
            token = env.get(token_var, "").strip()
            if not token:
                raise ConfigError(f"mcp_servers.{name}: token_env names {token_var}, which is not set",
                                  pointer=f"/mcp_servers/{name}/token_env")
            headers["Authorization"] = f"Bearer {token}"
        try:
            return cls(name, command=settings.get("command"), args=settings.get("args", ()),
                       env=settings.get("env"), cwd=settings.get("cwd"), url=settings.get("url"), headers=headers,
                       timeout=float(settings.get("timeout", DEFAULT_TIMEOUT)),
                       startup_timeout=float(settings.get("startup_timeout", DEFAULT_STARTUP_TIMEOUT)),
                       prefix=settings.get("prefix", ""), allow=settings.get("allow"), deny=settings.get("deny", ()))
        except ConfigError as exc:
            raise ConfigError(f"mcp_servers.{name}: {exc}", pointer=f"/mcp_servers/{name}") from None

    def __repr__(self) -> str:
        where = f"command={self.command!r}" if self.command else f"url={self.url!r}"
        return f"MCPServer({self.name!r}, {where})"

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._task is not None and not self._task.done()

    def open(self) -> MCPServer:
        """Start (or connect to) the server and read its tools; waits `startup_timeout`."""
        with self._lock:
            if self.is_open:
                return self
            from concurrent.futures import Future

            ready: Future[None] = Future()
            task = self._task = _bridge().submit(self._keep(ready))
            try:
                self._started(ready)
            except BaseException:
                task.cancel()  # the session task ends (and stops the process) in the background
                self._task = None
                raise
        return self

    def _started(self, ready: Future[None]) -> None:
        """Wait for the session to be up; say why it is not, as an MCPServerError."""
        from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin on Python 3.10

        try:
            ready.result(timeout=self.startup_timeout)
        except (FutureTimeout, TimeoutError):
            raise MCPServerError(f"MCP server {self.name!r} did not start and list its tools within "
                                 f"{self.startup_timeout:g} s (startup_timeout)", server=self.name) from None
        except MCPServerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK and the process raise many kinds
            raise MCPServerError(f"MCP server {self.name!r} did not start: {self._scrub(_describe(exc))}",
                                 server=self.name) from None

    def close(self) -> None:
        """End the session (and the subprocess of a stdio server)."""
        with self._lock:
            task, stop = self._task, self._stop
            self._task = self._stop = None
        if task is None or task.done():
            return
        if stop is not None:
            _bridge().loop.call_soon_threadsafe(stop.set)
        try:
            task.result(timeout=10)
        except Exception as exc:  # noqa: BLE001 - closing must not fail the run that used it
            log.debug("MCP server %s closed with %s", self.name, _describe(exc))

    def __enter__(self) -> MCPServer:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MCPServer:
        import asyncio

        await asyncio.to_thread(self.open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.close)

    def refresh(self) -> list[Tool]:
        """Read the tool list again (it is otherwise read once per server object)."""
        self._listed = _call_soon(self._list(), self.startup_timeout, self)
        return self.tools()

    def tools(self) -> list[Tool]:
        """The server's tools, filtered by allow/deny, named with the prefix."""
        if not self.is_open or self._listed is None:
            raise MCPServerError(f"MCP server {self.name!r} is not open; use it in run(mcp=[...]) or "
                                 "`with server:`", server=self.name)
        out: list[Tool] = []
        for listed in self._listed:
            original = str(listed.name)
            if self.allow is not None and not _matches(original, self.allow):
                continue
            if _matches(original, self.deny):
                continue
            schema = getattr(listed, "input_schema", None) or getattr(listed, "inputSchema", None) or {}
            out.append(MCPTool(self, original, _tool_name(self.prefix + original), listed.description or "",
                               dict(schema) or {"type": "object", "properties": {}}))
        return out

    # ---- on the bridge loop ---------------------------------------------------------------------

    async def _keep(self, ready: Future[None]) -> None:
        """The session's whole life, in one task: connect, list, wait for close, leave."""
        import asyncio

        try:
            from mcp import Client
        except ImportError:
            ready.set_exception(MCPServerError(_INSTALL, server=self.name))
            return
        self._stop = asyncio.Event()
        try:
            async with contextlib.AsyncExitStack() as stack:
                session = await stack.enter_async_context(Client(await self._transport(stack),
                                                                 read_timeout_seconds=self.timeout))
                self._session = session
                self._listed = await self._list()
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("MCP server %s stopped: %s", self.name, self._scrub(_describe(exc)))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._session = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        if self.command is not None:
            import sys

            from mcp import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=self.command, args=self.args, env=self.env or None, cwd=self.cwd)
            return stdio_client(params, errlog=sys.stderr)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = await stack.enter_async_context(httpx2.AsyncClient(
            headers=self.headers, timeout=httpx2.Timeout(30.0, read=max(300.0, self.timeout))))
        return streamable_http_client(str(self.url), http_client=http)

    async def _list(self) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        for _ in range(100):  # a paginator that never ends must not hang the run
            page = await self._session.list_tools(cursor=cursor)
            tools += page.tools
            cursor = getattr(page, "next_cursor", None) or getattr(page, "nextCursor", None)
            if not cursor:
                break
        return tools

    async def _call(self, name: str, arguments: Mapping[str, Any]) -> Any:
        import asyncio

        session = self._session
        if session is None:
            raise MCPServerError(f"MCP server {self.name!r} is not open (it stopped, or was closed)",
                                 server=self.name)
        try:
            result = await asyncio.wait_for(session.call_tool(name, dict(arguments)), self.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise MCPCallError(f"MCP server {self.name!r} did not answer within {self.timeout:g} s "
                               "(its timeout)") from None
        text = _result_text(result)
        if getattr(result, "is_error", None) or getattr(result, "isError", None):
            raise MCPCallError(text or "the tool failed")
        return text

    def _scrub(self, text: str) -> str:
        for name, value in self.headers.items():
            if value and re.search(r"auth|key|token|secret|cookie", name, re.IGNORECASE):
                text = text.replace(value, "***")
        return text


class MCPTool(Tool):
    """A tool an MCP server lists; a call goes to that server's session."""

    __slots__ = ("server", "original")

    def __init__(self, server: MCPServer, original: str, name: str, description: str,
                 parameters: dict[str, Any]) -> None:
        super().__init__(name, description, parameters, None, convert=_object, source=f"mcp:{server.name}")
        self.server = server
        self.original = original

    def invoke(self, arguments: Mapping[str, Any]) -> Any:
        return _call_soon(self.server._call(self.original, arguments), None, self.server)

    async def ainvoke(self, arguments: Mapping[str, Any]) -> Any:
        import asyncio

        return await asyncio.wrap_future(_bridge().submit(self.server._call(self.original, arguments)))


# ---- opening the servers of one run -----------------------------------------------------------


def resolve_servers(items: Sequence[Any], config: Any) -> list[MCPServer]:
    """`run(mcp=[...])`: MCPServer objects as they are, names looked up in `mcp_servers`."""
    servers = []
    for item in items:
        if isinstance(item, MCPServer):
            servers.append(item)
            continue
        settings = config.mcp_servers.get(item) if isinstance(item, str) else None
        if settings is None:
            known = ", ".join(sorted(config.mcp_servers)) or "none configured"
            raise ConfigError(f"no MCP server named {item!r} in the config's mcp_servers ({known})",
                              pointer="/mcp_servers")
        servers.append(MCPServer.from_config(item, settings, config.env))
    return servers


@contextlib.contextmanager
def open_servers(servers: Sequence[MCPServer]) -> Iterator[list[Tool]]:
    """Open the servers not open yet, yield all their tools, close what was opened here."""
    opened: list[MCPServer] = []
    try:
        tools: list[Tool] = []
        for server in servers:
            if not server.is_open:
                opened.append(server.open())
            tools += server.tools()
        yield tools
    finally:
        for server in reversed(opened):
            server.close()


@contextlib.asynccontextmanager
async def aopen_servers(servers: Sequence[MCPServer]) -> AsyncIterator[list[Tool]]:
    """The async twin of `open_servers`."""
    import asyncio

    opened: list[MCPServer] = []
    try:
        tools: list[Tool] = []
        for server in servers:
            if not server.is_open:
                opened.append(await asyncio.to_thread(server.open))
            tools += server.tools()
        yield tools
    finally:
        for server in reversed(opened):
            await asyncio.to_thread(server.close)


# ---- the background loop ----------------------------------------------------------------------


class _Bridge:
    """One daemon thread running an asyncio loop, where every MCP session lives."""

    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="human-mcp", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Any) -> Future[Any]:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)


_the_bridge: _Bridge | None = None
_bridge_lock = threading.Lock()


def _bridge() -> _Bridge:
    global _the_bridge
    with _bridge_lock:
        if _the_bridge is None:
            _the_bridge = _Bridge()
        return _the_bridge


def _call_soon(coroutine: Any, timeout: float | None, server: MCPServer) -> Any:
    from concurrent.futures import TimeoutError as FutureTimeout

    future = _bridge().submit(coroutine)
    try:
        return future.result(timeout=timeout)
    except (FutureTimeout, TimeoutError):
        future.cancel()
        raise MCPServerError(f"MCP server {server.name!r} did not answer within {timeout:g} s",
                             server=server.name) from None


# ---- small helpers ------------------------------------------------------------------------------


def _object(values: Any) -> dict[str, Any]:
    from ..core.typeschema import Mismatch

    if not isinstance(values, dict):
        raise Mismatch([f"$: expected an object, got {type(values).__name__}"])
    return values


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _tool_name(name: str) -> str:
    """An MCP name as OpenAI accepts it: 1-64 of [A-Za-z0-9_-] (MCP allows dots and more)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "tool"


def _result_text(result: Any) -> str:
    parts = []
    for item in getattr(result, "content", None) or ():
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(str(item.text))
        elif kind == "resource":
            resource = item.resource
            parts.append(str(getattr(resource, "text", None) or getattr(resource, "uri", "")))
        else:
            parts.append(f"[{kind or 'content'}: {getattr(item, 'mime_type', None) or getattr(item, 'mimeType', '')}]")
    if not parts:
        structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
        if structured is not None:
            import json

            return json.dumps(structured, ensure_ascii=False)
    return "\n".join(parts)


def _describe(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)  # an anyio/ExceptionGroup: say what is inside
    if inner:
        return "; ".join(_describe(e) for e in inner)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
