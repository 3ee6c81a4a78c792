"""No leaks and no raw exceptions (issue 10, classes 7, 8 and 9): keys that cannot go
in a header are refused when loaded, naming the provider but never the key; what a
server echoes is scrubbed from errors, logs and the CLI; no exception chain carries
the request's headers; deep JSON is a typed error; tool calls without ids get one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

import human
from human.errors import BadResponseError, ConfigError, HumanError, ServerError, ToolArgumentsError
from tests.client.conftest import CANARY
from tests.fakes import hostile
from tests.transport.conftest import chain_text


def test_a_key_echoed_in_the_request_id_is_scrubbed_everywhere(driver, fake, config_for, caplog):
    fake.reply(status=500, json={"error": {"message": "boom"}}, headers={"X-Request-Id": f"Bearer {CANARY}"})
    fake.reply(status=500, json={"error": {"message": "boom"}}, headers={"X-Request-Id": CANARY})
    handle = driver.client(config_for(reliability={"provider_retries": 0, "circuit_breaker": {"threshold": 99}}))
    with caplog.at_level(logging.DEBUG, logger="human"):
        for _ in range(2):
            with pytest.raises(ServerError) as caught:
                handle.chat("hi")
            assert caught.value.request_id and CANARY not in caught.value.request_id
            assert CANARY not in chain_text(caught.value)
    assert CANARY not in caplog.text


def failures(fake, tls_url: str):
    """(name, script, base_url): one scenario per way a call can fail at the transport."""
    return [
        ("refused", lambda: None, "http://127.0.0.1:9/v1"),
        ("timeout", lambda: fake.hang(3), None),
        ("reset", lambda: fake.reset_connection(), None),
        ("cut", lambda: hostile.raw(fake, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{", then="close"), None),
        ("garbage", lambda: hostile.raw(fake, b"NOT HTTP AT ALL\r\n\r\n", then="close"), None),
        ("redirect", lambda: hostile.redirect(fake, 302, "/x"), None),
        ("tls", lambda: None, tls_url + "/v1"),
        ("tls-plain-port", lambda: None, fake.url.replace("http://", "https://") + "/v1"),
        ("stream-cut", lambda: fake.stream([{"choices": [{"index": 0, "delta": {"content": "x"}}]}], done=False,
                                           drop_after=1, drop_with="rst"), None),
    ]


def test_no_exception_chain_carries_the_request_headers(driver, fake, tls_fake, config_at):
    for name, script, base_url in failures(fake, tls_fake.url):
        script()
        handle = driver.client(config_at(base_url or fake.url_v1, timeouts={"first_byte": 0.3}))
        with pytest.raises(HumanError) as caught:
            if name.startswith("stream"):
                handle.stream("hi")
            else:
                handle.chat("hi")
        text = chain_text(caught.value)
        assert CANARY not in text and "Authorization" not in text, name
        fake.reset()


@pytest.mark.parametrize("bad, words", [
    (CANARY[:10] + "\n" + CANARY[10:], "line break"),
    (CANARY[:10] + "\u200b" + CANARY[10:], "ZERO WIDTH SPACE"),
    (CANARY[:10] + " " + CANARY[10:], "whitespace"),
    (CANARY[:10] + "\x07" + CANARY[10:], "control character"),
    (CANARY[:10] + "é" + CANARY[10:], "non-ASCII"),
])
@pytest.mark.parametrize("where", ["config", "env", "argument"])
def test_an_unusable_key_is_a_config_error_naming_the_provider_not_the_key(driver, fake, tmp_path, bad, words,
                                                                         where):
    from tests.client.conftest import write_config

    entry = {"name": "local", "base_url": fake.url_v1}
    env = {}
    if where == "config":
        entry["api_key"] = bad
    elif where == "env":
        entry["api_key_env"] = "LOCAL_API_KEY"
        env["LOCAL_API_KEY"] = bad
    with pytest.raises(ConfigError) as caught:
        config = write_config(tmp_path, {"default_provider": "local", "default_model": "m", "providers": [entry]},
                              **env)
        handle = driver.client(config, api_key=bad if where == "argument" else None)
        handle.chat("hi")
    text = chain_text(caught.value)
    assert words.lower() in str(caught.value).lower()
    assert CANARY[:10] not in text and CANARY[10:] not in text
    assert "local" in str(caught.value) or "api_key" in str(caught.value)
    assert fake.requests == []


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_tool_arguments_are_a_typed_error(driver, fake, config_for):
    arguments = '{"a": ' + deep(100_000) + "}"
    fake.completion(None, tool_calls=[{"type": "function", "function": {"name": "f", "arguments": arguments}}])
    fake.stream([{"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"name": "f", "arguments": arguments}}]}, "finish_reason": "tool_calls"}]}])
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    for response in (handle.chat("hi"), handle.stream("hi")):
        with pytest.raises(ToolArgumentsError, match="too deeply"):
            response.tool_calls[0].parsed_arguments()


def test_a_deeply_nested_body_or_event_is_a_typed_error(driver, fake, config_for):
    fake.reply(body=('{"choices": ' + deep(100_000) + "}").encode(), content_type="application/json")
    fake.stream(['data: {"choices": ' + deep(100_000) + "}\n\n"], done=False)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(BadResponseError):
        handle.chat("hi")
    with pytest.raises(BadResponseError):
        handle.stream("hi")


def test_tool_calls_without_ids_get_the_same_stable_id_streamed_or_not(driver, fake, config_for):
    call = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    fake.completion(None, tool_calls=[call])
    fake.stream([{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **call}]}}]},
                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}])
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    whole, streamed = handle.chat("hi"), handle.stream("hi")
    assert whole.tool_calls[0].id and whole.tool_calls[0].id == streamed.tool_calls[0].id
    message = whole.to_message()
    assert message["tool_calls"][0]["id"] == whole.tool_calls[0].id
    done = [event for event in handle.events if event.type == "tool_call_done"]
    assert done[0].tool_call.id == whole.tool_calls[0].id


def test_an_answer_whose_only_choice_is_numbered_one_is_read(driver, fake, config_for):
    fake.reply(json={"choices": [{"index": 1, "message": {"role": "assistant", "content": "one"},
                                  "finish_reason": "stop"}]})
    fake.stream([{"choices": [{"index": 1, "delta": {"content": "one"}, "finish_reason": "stop"}]}])
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "one"
    assert handle.stream("hi").content == "one"


# ---- the CLI -------------------------------------------------------------------------------


def cli(config, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "human", "chat", "--config", str(config), *args, "hi"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LOCAL_API_KEY": CANARY, **(env or {})})


@pytest.fixture
def cli_config(tmp_path, fake):
    def make(**entry):
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"default_provider": "local", "default_model": "m",
                                      "providers": [{"name": "local", "base_url": fake.url_v1,
                                                     "api_key_env": "LOCAL_API_KEY", **entry}],
                                      "reliability": {"provider_retries": 0}}))
        return config

    return make


def test_the_cli_reports_hostile_failures_in_one_scrubbed_line(fake, cli_config):
    config = cli_config(timeouts={"first_byte": 0.5, "idle": 0.5, "total": 2})
    scenarios = [
        (lambda: fake.reply(status=500, json={"error": {"message": "x"}}, headers={"X-Request-Id": CANARY}), "500"),
        (lambda: hostile.trickle_head(fake, interval=0.2), "first_byte=0.5s"),
        (lambda: hostile.endless(fake, framing="http10", interval=0.1), "total=2s"),
        (lambda: hostile.redirect(fake, 301, "/v1/v1/chat/completions"), "/v1/v1/chat/completions"),
        (lambda: fake.stream([{"choices": [{"index": 0, "delta": {"content": "x"}}]}], done=False),
         "finish_reason"),
        (lambda: fake.stream(["event: error\ndata: upstream fell over\n\n"], done=False), "upstream fell over"),
    ]
    for number, (script, words) in enumerate(scenarios):
        fake.reset()
        script()
        args = ["--debug"] if number % 2 else []
        if "finish_reason" not in words and "upstream" not in words:
            args.append("--no-stream")
        result = cli(config, *args)
        assert result.returncode == 1, (words, result.stderr)
        assert words in result.stderr, (words, result.stderr)
        assert "Traceback" not in result.stderr or "--debug" in args
        assert CANARY not in result.stdout + result.stderr


def test_the_cli_debug_log_is_scrubbed(fake, cli_config):
    fake.reply(status=500, json={"error": {"message": "x"}}, headers={"X-Request-Id": f"Bearer {CANARY}"})
    result = cli(cli_config(), "--debug", "--no-stream")
    assert result.returncode == 1 and "human.client" in result.stderr
    assert CANARY not in result.stderr + result.stdout


def test_the_cli_refuses_an_unusable_key_without_showing_it(fake, cli_config):
    result = cli(cli_config(), "--no-stream", env={"LOCAL_API_KEY": CANARY[:8] + "\u200b" + CANARY[8:]})
    assert result.returncode == 2 and "zero width space" in result.stderr.lower()
    assert CANARY[8:] not in result.stderr + result.stdout
    assert fake.requests == []


def test_human_exports_the_new_errors():
    assert issubclass(human.TLSError, human.APIConnectionError)
    assert issubclass(human.RedirectError, human.APIStatusError)


def test_config_show_masks_proxy_credentials(cli_config):
    config = cli_config(proxy="http://alice:hunter22-pw@127.0.0.1:3128")
    result = subprocess.run([sys.executable, "-m", "human", "config", "show", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:3128" in result.stdout and "hunter22" not in result.stdout + result.stderr
