"""MCP servers as tools (agent/mcp.py) against a tiny MCP server written with the official
`mcp` package (tests/fakes/mcp_server.py), over stdio and streamable HTTP, through both
clients: tools listed and called, errors and timeouts sent back to the model, name
prefixes and filters, the cached tool list, lifecycles, the config's mcp_servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import human
from human.agent.mcp import MCPServer
from human.errors import ConfigError, MCPServerError

from .agent_support import Model, answer, call, pairing_problems
from .conftest import CANARY

pytest.importorskip("mcp")

SERVER = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")


@pytest.fixture(scope="module")
def calc():
    """One stdio server for the module, opened once (runs leave an open server open)."""
    with MCPServer.stdio(sys.executable, [SERVER], name="calc") as server:
        yield server


@pytest.fixture
def client(driver, config_for, fake):
    def make(model: Model, **top: Any):
        fake.respond(model).as_default()
        return driver.client(config_for(**top))

    return make


def test_a_model_calls_an_mcp_tool_and_gets_its_result(client, calc):
    model = Model(answer(None, [call("add", {"a": 2, "b": 3})]), answer("2 + 3 = 5"))
    result = client(model).run("What is 2 + 3?", mcp=[calc])
    assert result.content == "2 + 3 = 5"
    [run] = result.steps[0].tools
    assert (run.status, run.output) == ("ok", "5")
    sent = {tool["function"]["name"]: tool["function"] for tool in model.bodies[0]["tools"]}
    assert sent["add"]["description"] == "Add two integers."
    assert sent["add"]["parameters"]["required"] == ["a", "b"]
    assert "dotted_name" in sent  # "dotted.name" as OpenAI accepts a name
    assert calc.is_open  # it was open before the run: the run leaves it open


def test_python_tools_and_mcp_tools_together(client, calc):
    def double(n: int) -> int:
        """Doubles."""
        return 2 * n

    model = Model(answer(None, [call("add", {"a": 1, "b": 1}), call("double", {"n": 4})]), answer("ok"))
    result = client(model).run("go", tools=[double], mcp=[calc])
    assert [run.output for run in result.steps[0].tools] == ["2", "8"]


def test_an_mcp_error_goes_back_to_the_model(client, calc):
    model = Model(answer(None, [call("fail", {}, id="f")]), answer("it failed"))
    result = client(model).run("go", mcp=[calc])
    [run] = result.steps[0].tools
    assert run.status == "error"
    assert run.output == "error: MCPCallError: Error executing tool fail"
    assert pairing_problems(result.messages) == []


def test_a_call_over_the_servers_timeout_is_an_error_and_the_session_survives(client, calc):
    calc.timeout = 0.5
    try:
        model = Model(answer(None, [call("slow", {"seconds": 5})]),
                      answer(None, [call("add", {"a": 1, "b": 2})]), answer("done"))
        result = client(model).run("go", mcp=[calc])
    finally:
        calc.timeout = 60.0
    first, second = (step.tools[0] for step in result.steps[:2])
    assert first.output == "error: MCPCallError: MCP server 'calc' did not answer within 0.5 s (its timeout)"
    assert second.output == "3"


def test_prefix_allow_and_deny_shape_what_the_model_sees(calc):
    names = {tool.name for tool in calc.tools()}
    assert {"add", "fail", "slow", "dotted_name", "secret_admin", "grow"} <= names
    calc.prefix, calc.deny = "calc_", ["secret_*"]
    try:
        shown = {t.name for t in calc.tools()}
        assert "calc_add" in shown and "calc_secret_admin" not in shown
        calc.allow = ["add", "slow"]
        assert sorted(t.name for t in calc.tools()) == ["calc_add", "calc_slow"]
        assert [t.source for t in calc.tools()] == ["mcp:calc", "mcp:calc"]
    finally:
        calc.prefix, calc.deny, calc.allow = "", [], None


def test_the_tool_list_is_read_once_per_server_until_refresh(calc):
    [grow] = [tool for tool in calc.tools() if tool.name == "grow"]
    assert grow.invoke({}) == "added"
    assert "grown" not in {tool.name for tool in calc.tools()}  # cached
    assert "grown" in {tool.name for tool in calc.refresh()}


def test_a_server_named_for_one_run_is_opened_and_closed_by_it(client):
    server = MCPServer.stdio(sys.executable, [SERVER], name="once", allow=["add"])
    model = Model(answer(None, [call("add", {"a": 20, "b": 22})]), answer("42"))
    result = client(model).run("go", mcp=[server])
    assert result.steps[0].tools[0].output == "42"
    assert [tool["function"]["name"] for tool in model.bodies[0]["tools"]] == ["add"]
    assert not server.is_open


@pytest.mark.parametrize("driver", ["sync"], indirect=True)  # resolving names is the same for both clients
def test_servers_from_the_config_by_name(client):
    model = Model(answer(None, [call("m_add", {"a": 1, "b": 2})]), answer("3"))
    settings = {"command": sys.executable, "args": [SERVER], "prefix": "m_", "allow": ["add"], "timeout": 30}
    handle = client(model, mcp_servers={"calc": settings})
    assert handle.run("go", mcp=["calc"]).steps[0].tools[0].output == "3"
    with pytest.raises(ConfigError, match=r"no MCP server named 'nope' in the config's mcp_servers \(calc\)"):
        handle.run("go", mcp=["nope"])


def test_a_server_that_does_not_start_is_a_typed_error():
    gone = MCPServer.stdio(sys.executable, ["-c", "import sys; sys.exit(3)"], name="gone")
    with pytest.raises(MCPServerError, match="MCP server 'gone' did not start") as caught:
        gone.open()
    assert caught.value.server == "gone" and not gone.is_open


def test_a_server_that_never_answers_times_out_at_startup():
    mute = MCPServer.stdio(sys.executable, ["-c", "import time; time.sleep(60)"], name="mute", startup_timeout=1)
    started = time.monotonic()
    with pytest.raises(MCPServerError, match=r"did not start and list its tools within 1 s \(startup_timeout\)"):
        mute.open()
    assert time.monotonic() - started < 20  # generous: a 2-core machine
    assert not mute.is_open


def test_without_the_mcp_package_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mcp", None)
    server = MCPServer.stdio(sys.executable, [SERVER], name="calc")
    with pytest.raises(MCPServerError, match=r"pip install 'human\[mcp\]'"):
        server.open()


def test_a_server_needs_a_command_or_a_url():
    with pytest.raises(ConfigError, match="needs either a command"):
        MCPServer("x")
    with pytest.raises(ConfigError, match="needs either a command"):
        MCPServer("x", command="a", url="http://127.0.0.1:1/mcp")


# ---- streamable HTTP ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def http_server():
    """The same server over streamable HTTP on 127.0.0.1, stopped by its PID."""
    port = free_port()
    process = subprocess.Popen([sys.executable, SERVER, "http", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"the MCP HTTP server exited with {process.returncode}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_streamable_http(client, http_server):
    server = MCPServer.http(http_server, name="remote", headers={"X-Team": "a"})
    model = Model(answer(None, [call("add", {"a": 5, "b": 6})]), answer("11"))
    result = client(model).run("go", mcp=[server])
    assert result.steps[0].tools[0].output == "11"
    assert not server.is_open


def test_a_token_from_the_environment_never_shows_in_an_error(monkeypatch):
    monkeypatch.setenv("MCP_TOKEN", CANARY)
    server = MCPServer.from_config("remote", {"url": f"http://127.0.0.1:{free_port()}/mcp", "token_env": "MCP_TOKEN",
                                              "startup_timeout": 10}, os.environ)
    assert server.headers["Authorization"] == f"Bearer {CANARY}"
    with pytest.raises(MCPServerError) as caught:
        server.open()
    text = f"{caught.value!s} {caught.value!r} {caught.value.__cause__!r} {caught.value.__context__!r}"
    assert CANARY not in text and CANARY not in repr(server)
    with pytest.raises(ConfigError, match="token_env names MISSING_TOKEN, which is not set"):
        MCPServer.from_config("remote", {"url": "http://127.0.0.1:1/mcp", "token_env": "MISSING_TOKEN"}, {})


def test_the_public_name():
    assert human.MCPServer is MCPServer
