"""A canary key is planted, then a full run of failures goes through both clients and
the CLI. Nothing the library or the CLI emits may contain it: exception text, reprs,
debug logs, stdout, stderr, the URL, or the process's own arguments."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

import human
from human.errors import HumanError
from tests.client.conftest import CANARY


def scripted_failures(fake) -> int:
    """Queue one of every failure the server can produce; the key is echoed in several."""
    fake.reply(status=401, json={"error": {"message": f"Incorrect API key provided: {CANARY}"}})
    fake.reply(status=403, json={"error": {"message": f"key {CANARY} may not use this model"}})
    fake.reply(status=404, body=f"<html>no route for Bearer {CANARY}</html>".encode(), content_type="text/html")
    fake.reply(status=400, json={"error": {"message": f"bad request from {CANARY}", "param": "messages"}})
    fake.reply(status=429, json={"error": {"message": f"slow down {CANARY}", "code": "insufficient_quota"}})
    fake.reply(status=500, json={"error": {"message": f"crash while handling {CANARY}"}})
    fake.reply(json={"error": {"message": f"error in a 200 for {CANARY}"}})
    fake.reply(body=f'{{"choices": [{{"message": {{"content": "{CANARY}'.encode(), content_type="application/json")
    fake.stream([{"choices": [{"index": 0, "delta": {"content": "x"}}]}, {"error": {"message": f"boom {CANARY}"}}])
    return 9


def test_canary_never_leaks_from_the_library(driver, fake, config_for, caplog):
    count = scripted_failures(fake)
    handle = driver.client(config_for(reliability={"provider_retries": 0, "circuit_breaker": {"threshold": 100}}))
    emitted = [repr(handle.client), repr(handle.client.target()), str(handle.client.target().key),
               json.dumps(handle.client.dry_run("hi"))]
    with caplog.at_level(logging.DEBUG, logger="human"):
        for number in range(count):
            with pytest.raises(HumanError) as caught:
                if number == count - 1:
                    handle.stream("hi")
                else:
                    handle.chat("hi")
            error = caught.value
            emitted += [str(error), repr(error), repr(vars(error))]
    emitted.append(caplog.text)
    assert len(fake.requests) == count
    assert all(request.headers["Authorization"] == f"Bearer {CANARY}" for request in fake.requests)
    assert all(CANARY not in request.path for request in fake.requests)
    leaks = [text for text in emitted if CANARY in text]
    assert leaks == []


def test_canary_never_leaks_from_the_cli(fake, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"default_provider": "local", "default_model": "m",
                                  "providers": [{"name": "local", "base_url": fake.url_v1,
                                                 "api_key_env": "LOCAL_API_KEY"}],
                                  "reliability": {"provider_retries": 0}}))
    count = scripted_failures(fake)
    outputs = []
    for number in range(count):
        args = ["--debug"] if number % 2 else []
        args += [] if number == count - 1 else ["--no-stream"]
        result = subprocess.run([sys.executable, "-m", "human", "chat", "--config", str(config), *args, "hi"],
                                capture_output=True, text=True, env={**os.environ, "LOCAL_API_KEY": CANARY},
                                timeout=30)
        assert result.returncode == 1, result.stderr
        outputs += [result.stdout, result.stderr]
        assert CANARY not in " ".join(result.args)
    for command in (["providers", "show", "local"], ["config", "show"], ["chat", "--dry-run", "hi"]):
        result = subprocess.run([sys.executable, "-m", "human", *command, "--config", str(config)],
                                capture_output=True, text=True, env={**os.environ, "LOCAL_API_KEY": CANARY},
                                timeout=30)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    assert len(fake.requests) == count
    assert [text for text in outputs if CANARY in text] == []


def test_secret_type_masks_itself_everywhere():
    secret = human.Secret(CANARY)
    assert CANARY not in repr(secret) and CANARY not in str(secret) and CANARY not in f"{secret}"
    assert CANARY not in f"{secret!r:>80}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_canary_never_leaks_from_an_agent_run(driver, fake, config_for, caplog):
    """A run whose model fails mid-way echoing the key, and runs that stop at the turn limit
    and on a tool error: errors, results, steps and logs stay clean."""
    from tests.client.agent_support import Model, answer, call

    def lookup(q: str) -> str:
        """Looks up."""
        raise ValueError("lookup failed")

    tool_turn = answer(None, [call("lookup", {"q": "x"})])
    model = Model(tool_turn, then=(401, {"error": {"message": f"Incorrect API key provided: {CANARY}"}}))
    fake.respond(model).as_default()
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    emitted = []
    with caplog.at_level(logging.DEBUG, logger="human"):
        with pytest.raises(HumanError) as caught:
            handle.run_stream("go", tools=[lookup])
        emitted += [str(caught.value), repr(caught.value), repr(vars(caught.value)), repr(handle.last.messages)]
        model.then = tool_turn
        with pytest.raises(human.MaxTurnsError) as stopped:
            handle.run("go", tools=[lookup], max_turns=2)
        with pytest.raises(human.ToolRunError) as failed:
            handle.run("go", tools=[lookup], on_tool_error="raise")
        for error in (stopped.value, failed.value):
            emitted += [str(error), repr(error), repr(error.result), repr(error.__cause__)]
    emitted.append(caplog.text)
    assert [text for text in emitted if CANARY in text] == []
