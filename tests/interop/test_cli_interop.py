"""Interop through the `human` command (a real subprocess, `python -m human ...`),
configured the way a user would: `--config FILE`, `HU_CONFIG_PATH`, `~/.human/config.json`
overlaid by `./.human/config.json`, `-p custom:<url>`, and the `litellm` registry name
with a base_url override. Exit codes: 0 success, 1 the API call failed, 2 usage/config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .interop_support import LITELLM_KEY, aimock_config, litellm_config

pytestmark = pytest.mark.interop

HELLO_LITELLM = "Hello from the LiteLLM mock server."


class CLI:
    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd

    def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "HOME": str(self.home), "PYTHONIOENCODING": "utf-8", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "human", *args],
            input=stdin, capture_output=True, text=True, encoding="utf-8", errors="replace",
            env=environment, cwd=self.cwd, timeout=timeout, check=False,
        )


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    home, cwd = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    cwd.mkdir()
    return CLI(home, cwd)


@pytest.fixture
def aimock_file(aimock, test_id, write_config):
    """aimock_file(model, **config) -> path of a config file with `compatible` → aimock."""

    def make(model: str = "any-model", **config: Any) -> str:
        return str(write_config(aimock_config(aimock, test_id, model, **config)))

    return make


@pytest.fixture
def litellm_file(litellm, write_config):
    def make(model: str = "mock-gpt", **config: Any) -> str:
        return str(write_config(litellm_config(litellm, model, **config)))

    return make


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("human: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ---- configured the way a user would ----------------------------------------------------------


def test_chat_streams_to_stdout(cli, aimock_file):
    result = cli("chat", "--config", aimock_file(), "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello from aimock.\n", "")


def test_chat_no_stream_with_usage(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-usage"), "--no-stream", "--usage", "hi")
    assert result.returncode == 0
    assert result.stdout == "Fixed usage.\n"
    assert "usage: prompt 11, completion 7, total 18 · compatible/mock-usage" in result.stderr


def test_chat_stream_with_usage(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-usage", entry={"stream_usage": True}), "--usage", "hi")
    assert result.returncode == 0 and result.stdout == "Fixed usage.\n"
    assert "usage: prompt 11, completion 7, total 18" in result.stderr


def test_chat_json(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-length"), "--json", "--max-tokens", "5", "hi")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["content"] == "Truncated by max_tokens"
    assert answer["finish_reason"] == "length"
    assert answer["usage"]["total_tokens"] == 17
    assert (answer["provider"], answer["model_requested"], answer["attempt"]) == ("compatible", "mock-length", 1)


def test_custom_url_provider_on_the_command_line(cli, aimock, write_config):
    config = str(write_config({"default_model": "any-model"}))
    result = cli("chat", "--config", config, "-p", f"custom:{aimock.base_url}", "ping")
    assert (result.returncode, result.stdout) == (0, "pong\n"), result.stderr


def test_litellm_registry_name_with_base_url_override(cli, litellm_file):
    result = cli("chat", "--config", litellm_file(), "--usage", "hi")
    assert (result.returncode, result.stdout) == (0, HELLO_LITELLM + "\n"), result.stderr
    assert "· litellm/mock-gpt" in result.stderr


def test_litellm_key_from_an_environment_variable(cli, litellm, write_config):
    config = litellm_config(litellm, entry={"api_key_env": "MY_PROXY_KEY"})
    del config["providers"][0]["api_key"]
    result = cli("chat", "--config", str(write_config(config)), "--no-stream", "hi",
                 env={"MY_PROXY_KEY": LITELLM_KEY})
    assert (result.returncode, result.stdout) == (0, HELLO_LITELLM + "\n"), result.stderr


def test_user_config_in_home(cli, aimock, test_id):
    home_config = cli.home / ".human" / "config.json"
    home_config.parent.mkdir()
    home_config.write_text(json.dumps(aimock_config(aimock, test_id, "mock-usage")))
    home_config.chmod(0o600)
    result = cli("chat", "hi")
    assert (result.returncode, result.stdout) == (0, "Fixed usage.\n"), result.stderr


def test_workspace_config_overlays_the_user_config(cli, aimock, test_id):
    home_config = cli.home / ".human" / "config.json"
    home_config.parent.mkdir()
    home_config.write_text(json.dumps(aimock_config(aimock, test_id, "any-model")))
    home_config.chmod(0o600)
    workspace = cli.cwd / ".human" / "config.json"
    workspace.parent.mkdir()
    workspace.write_text(json.dumps({"default_model": "mock-usage"}))
    result = cli("chat", "hi")
    assert (result.returncode, result.stdout) == (0, "Fixed usage.\n"), result.stderr


def test_config_path_from_the_environment(cli, aimock_file):
    result = cli("chat", "ping", env={"HU_CONFIG_PATH": aimock_file()})
    assert (result.returncode, result.stdout) == (0, "pong\n"), result.stderr


def test_config_option_before_the_command(cli, aimock_file):
    """`human --config FILE chat ...`: the top-level parser documents --config too."""
    result = cli("--config", aimock_file("mock-usage"), "chat", "hi")
    assert (result.returncode, result.stdout) == (0, "Fixed usage.\n"), result.stderr


def test_piped_stdin_follows_the_prompt(cli, aimock_file):
    result = cli("chat", "--config", aimock_file(), "summarise:", stdin="ping")
    assert (result.returncode, result.stdout) == (0, "pong\n"), result.stderr


def test_models_command(cli, aimock_file, litellm_file):
    result = cli("models", "--config", aimock_file())
    assert result.returncode == 0, result.stderr
    assert "mock-tools" in result.stdout and "mock-usage" in result.stdout
    result = cli("models", "--config", litellm_file(), "--json")
    assert result.returncode == 0, result.stderr
    assert "mock-gpt" in {model["id"] for model in json.loads(result.stdout)}


# ---- answers of every shape -----------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--no-stream",)], ids=["stream", "whole"])
def test_tool_call_is_printed(cli, aimock_file, flags):
    result = cli("chat", "--config", aimock_file("mock-tools"), *flags, "weather?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == '[tool call call_weather_1] get_weather({"city":"Paris","unit":"celsius"})\n'


def test_text_plus_tool_call_is_printed(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-text-and-tool"), "weather?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'Let me check that.\n[tool call call_mix_1] get_weather({"city":"Oslo"})\n'


def test_reasoning_goes_to_stderr(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-reasoning"), "--reasoning", "hi")
    assert result.returncode == 0
    assert result.stdout == "Hi there.\n"
    assert "The user greets me; answer briefly." in result.stderr


@pytest.mark.parametrize("server", [
    "litellm", "aimock"])
def test_non_ascii_answer_is_printed(cli, aimock_file, litellm_file, server):
    config = litellm_file("mock-unicode") if server == "litellm" else aimock_file("mock-unicode")
    result = cli("chat", "--config", config, "hi")
    assert (result.returncode, result.stdout) == (0, "Grüße, 世界! 😀👍 — fin.\n"), result.stderr


def test_slow_stream_under_the_idle_timeout(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-slow", entry={"timeouts": {"idle": 2}}), "hi")
    assert (result.returncode, result.stdout) == (0, "Slow but complete answer.\n"), result.stderr


# ---- failures: one line on stderr, exit 1 ---------------------------------------------------


def test_401(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-401"), "hi")
    assert result.returncode == 1 and result.stdout == ""
    line = one_error_line(result)
    assert line.startswith("human: error: [compatible/mock-401] HTTP 401: Incorrect API key provided (mock)")
    assert "check the API key" in line


def test_401_from_a_server_that_requires_a_key(cli, aimock_auth, write_config):
    config = str(write_config({"default_provider": "compatible", "default_model": "any-model", "providers": [
        {"name": "compatible", "base_url": aimock_auth.base_url}]}))
    result = cli("chat", "--config", config, "hi")
    assert result.returncode == 1
    assert "HTTP 401: Invalid API key" in one_error_line(result)


def test_litellm_without_a_key(cli, litellm, write_config):
    config = litellm_config(litellm)
    del config["providers"][0]["api_key"]
    result = cli("chat", "--config", str(write_config(config)), "hi")
    assert result.returncode == 1
    assert "[litellm/mock-gpt] HTTP 401: Authentication Error, No api key passed in." in one_error_line(result)


def test_litellm_wrong_key_is_never_printed(cli, litellm_file):
    secret = "sk-wrong-key-0123456789abcdef"
    result = cli("chat", "--debug", "--config", litellm_file(entry={"api_key": secret}), "hi")
    assert result.returncode == 1
    assert "HTTP 400: No connected db." in result.stderr
    assert secret not in result.stderr and secret not in result.stdout


def test_429_with_retry_after_recovers(cli, aimock_file):
    """The first answer is 429 with Retry-After: 1; the CLI waits and gets the answer."""
    result = cli("chat", "--config", aimock_file("mock-429-once"), "--no-stream", "--usage", "hi")
    assert (result.returncode, result.stdout) == (0, "Recovered after a 429.\n"), result.stderr
    assert "(attempt 2)" in result.stderr


def test_429_not_retried_lists_nothing_else(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-429-quota"), "hi")
    assert result.returncode == 1
    assert "HTTP 429" in one_error_line(result) and "out of quota" in result.stderr


def test_5xx_exhausted_is_one_line_and_debug_lists_every_attempt(cli, aimock_file):
    config = aimock_file("mock-503", reliability={"provider_retries": 1, "provider_backoff_ms": 100})
    result = cli("chat", "--config", config, "hi")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1  # one line for all attempts (issue 11)
    assert "human: error: 2 attempts failed, each with:" in result.stderr
    assert "HTTP 503: Service unavailable (mock)" in result.stderr
    debug = cli("chat", "--config", config, "--debug", "hi")
    assert "  1. " in debug.stderr and "  2. " in debug.stderr


def test_context_length(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-400"), "hi")
    assert result.returncode == 1
    assert "maximum context length" in one_error_line(result) and "shorten the conversation" in result.stderr


@pytest.mark.parametrize("model", ["mock-truncate-late", "mock-disconnect"])
def test_broken_stream_keeps_the_partial_answer_and_says_so(cli, aimock_file, model):
    result = cli("chat", "--config", aimock_file(model), "hi")
    assert result.returncode == 1
    assert result.stdout.startswith("This ")
    assert "closed the connection" in result.stderr
    assert "the partial answer above is incomplete" in result.stderr


def test_malformed_body(cli, aimock_file):
    result = cli("chat", "--config", aimock_file("mock-malformed"), "--no-stream", "hi")
    assert result.returncode == 1
    assert "not valid JSON" in one_error_line(result)


def test_idle_timeout_from_the_config(cli, aimock_file):
    config = aimock_file("mock-slow", entry={"timeouts": {"idle": 0.2}}, reliability={"provider_retries": 0})
    result = cli("chat", "--config", config, "hi")
    assert result.returncode == 1
    assert "idle timeout" in one_error_line(result)
