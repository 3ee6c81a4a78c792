"""`human chat --functions / --mcp / --tools-approve / --chain-limit` (issue 13): the agent
loop on the command line, as a script sees it (pipes, exit codes) and as a person at a
terminal does (a pseudo-terminal: the y/n question, dimmed tool lines, the interactive
chat keeping tool results in its history)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.agent_support import Model, answer, call, pairing_problems

from .terminal import Terminal
from .test_cli import CANARY, human

DIM = "\x1b[2m"

TOOLS = '''
from typing import Literal

import human


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return f"{city}: 21 degrees {unit.upper()}"


@human.tool(name="clock")
def local_time(tz: str) -> str:
    """The local time in a time zone."""
    return "12:00 in " + tz


def _helper() -> None:  # private: not a tool
    pass
'''


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "test-model",
                                "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
                                "reliability": {"provider_retries": 0}}))
    os.chmod(file, 0o600)
    return file


@pytest.fixture
def tools_file(tmp_path: Path) -> Path:
    path = tmp_path / "tools.py"
    path.write_text(TOOLS)
    return path


def weather_then_answer() -> Model:
    return Model(answer(None, [call("get_weather", {"city": "Oslo"}, id="c1")]), answer("It is 21 degrees in Oslo."))


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_functions_from_a_file_are_tools_and_their_calls_show_on_stderr(fake, cfg, tools_file, stream):
    model = weather_then_answer()
    fake.respond(model).as_default()
    flags = [] if stream else ["--no-stream"]
    result = human("chat", "--config", str(cfg), "--functions", str(tools_file), *flags, "Weather in Oslo?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is 21 degrees in Oslo.\n"
    assert result.stderr == '→ get_weather({"city": "Oslo"})\n← get_weather: Oslo: 21 degrees C\n'  # piped: no colour
    assert [tool["function"]["name"] for tool in model.bodies[0]["tools"]] == ["get_weather", "clock"]
    assert model.bodies[0]["tools"][0]["function"]["parameters"]["properties"]["city"]["description"] == \
        "The city's name."
    assert pairing_problems(model.last["messages"]) == []


def test_functions_as_a_string_of_code_and_json_output(fake, cfg):
    model = Model(answer(None, [call("double", {"n": 21})]), answer("42"))
    fake.respond(model).as_default()
    code = 'def double(n: int) -> int:\n    """Doubles."""\n    return 2 * n\n'
    result = human("chat", "--config", str(cfg), "--functions", code, "--json", "double 21")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["content"] == "42"
    assert [(r["name"], r["status"], r["output"]) for r in printed["tool_runs"]] == [("double", "ok", "42")]


def test_chain_limit_stops_a_model_that_keeps_calling(fake, cfg, tools_file):
    model = Model(then=lambda body: answer(None, [call("get_weather", {"city": f"c{len(body['messages'])}"})]))
    fake.respond(model).as_default()
    result = human("chat", "--config", str(cfg), "--functions", str(tools_file), "--chain-limit", "2", "go")
    assert result.returncode == 1
    assert len(model.bodies) == 2
    assert result.stderr.splitlines()[-1] == ("human: error: the model still asked for tools after 2 turns; nothing "
                                              "more was sent — raise the limit with --chain-limit N (0: no limit)")


@pytest.mark.parametrize(("source", "message"), [
    ("missing.py", "--functions missing.py: no such file"),
    ("def broken(:\n", "--functions <--functions>: line 1:"),
    ("x = 1\ndef _private(): pass\n", "defines no public function to use as a tool"),
])
def test_a_functions_source_that_cannot_be_used_is_a_usage_error(fake, cfg, source, message):
    result = human("chat", "--config", str(cfg), "--functions", source, "hi")
    assert result.returncode == 2
    assert message in result.stderr and len(fake.requests) == 0


def test_tools_approve_needs_tools_and_a_terminal(fake, cfg, tools_file):
    result = human("chat", "--config", str(cfg), "--tools-approve", "hi")
    assert result.returncode == 2 and "--tools-approve needs tools" in result.stderr
    fake.respond(weather_then_answer()).as_default()
    detached = subprocess.run([sys.executable, "-m", "human", "chat", "--config", str(cfg), "--functions",
                               str(tools_file), "--tools-approve", "weather?"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, start_new_session=True, timeout=30)
    assert detached.returncode == 2
    assert "--tools-approve needs a terminal to ask on" in detached.stderr


def test_dry_run_shows_the_tools_and_sends_nothing(fake, cfg, tools_file):
    result = human("chat", "--config", str(cfg), "--functions", str(tools_file), "--dry-run", "hi")
    assert result.returncode == 0, result.stderr
    assert [tool["function"]["name"] for tool in json.loads(result.stdout)["body"]["tools"]] == ["get_weather", "clock"]
    assert fake.requests == []


def test_mcp_tools_from_the_config(fake, tmp_path):
    pytest.importorskip("mcp")
    server = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "m",
                                "providers": [{"name": "local", "base_url": fake.url_v1}],
                                "mcp_servers": {"calc": {"command": sys.executable, "args": [server],
                                                         "allow": ["add"]}}}))
    model = Model(answer(None, [call("add", {"a": 2, "b": 3})]), answer("5"))
    fake.respond(model).as_default()
    result = human("chat", "--config", str(file), "--mcp", "calc", "2+3?", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "5\n"
    assert "← add: 5" in result.stderr
    assert [tool["function"]["name"] for tool in model.bodies[0]["tools"]] == ["add"]


# ---- at a terminal ----------------------------------------------------------------------------


@pytest.mark.parametrize("reply", ["y", "n"])
def test_tools_approve_asks_on_the_terminal(fake, cfg, tools_file, reply):
    model = weather_then_answer()
    fake.respond(model).as_default()
    term = Terminal("chat", "--config", str(cfg), "--functions", str(tools_file), "--tools-approve",
                    "Weather in Oslo?")
    term.expect('Run get_weather({"city": "Oslo"})? [y/N] ')
    term.send(reply + "\n")
    term.expect("It is 21 degrees in Oslo.")
    assert term.finish() == 0
    result = model.last["messages"][-1]["content"]
    if reply == "y":
        assert result == "Oslo: 21 degrees C"
        assert f'{DIM}→ get_weather({{"city": "Oslo"}})' in term.text  # dimmed on a terminal
    else:
        assert result == "not run: the user declined this call"
        assert f"{DIM}← get_weather: [refused] not run: the user declined this call" in term.text


def test_the_interactive_chat_keeps_tool_calls_and_results_in_its_history(fake, cfg, tools_file):
    model = Model(answer(None, [call("get_weather", {"city": "Oslo"}, id="c1")]), answer("21 in Oslo."),
                  answer("You asked about Oslo."))
    fake.respond(model).as_default()
    term = Terminal("chat", "--config", str(cfg), "--functions", str(tools_file))
    term.expect("you> ")
    term.send("Weather in Oslo?\n")
    term.expect("21 in Oslo.")
    term.expect("you> ")
    term.send("What did I ask?\n")
    term.expect("You asked about Oslo.")
    term.expect("you> ")
    term.send("/exit\n")
    assert term.finish() == 0
    roles = [m["role"] for m in model.last["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert pairing_problems(model.last["messages"]) == [] and model.refusals == []
