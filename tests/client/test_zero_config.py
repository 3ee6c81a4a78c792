"""The zero-config start of the library: with nothing configured, `Client()` uses the
first local server that lists a model, says so once on the log, and never picks a cloud
provider (issue 11). `HUMAN_LOCAL_PORTS` points the look at the fake server's port."""

from __future__ import annotations

import logging
import socket

import pytest

from human.config import load_config
from human.discover import LOCAL_SERVERS, servers_from_env
from human.errors import ConfigError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def empty_config(**env: str):
    return load_config(env={"HOME": "/nonexistent-home", **env})


def test_nothing_configured_uses_the_first_local_server_and_its_first_model(driver, fake, caplog):
    fake.reply(json={"object": "list", "data": [{"id": "qwen3:0.6b"}, {"id": "other"}]})
    fake.completion("hello from the local server")
    config = empty_config(HUMAN_LOCAL_PORTS=f"{closed_port()},{fake.port}")
    with caplog.at_level(logging.WARNING, logger="human.client"):
        answer = driver.client(config).chat("hi")
    assert answer.content == "hello from the local server"
    assert fake.requests[0].path == "/v1/models"
    assert fake.last.path == "/v1/chat/completions" and fake.last.json["model"] == "qwen3:0.6b"
    (line,) = [r.getMessage() for r in caplog.records if "no provider configured" in r.getMessage()]
    assert f"using port {fake.port} at {fake.url_v1} with qwen3:0.6b (the first model it lists)" in line
    assert f"to keep it: human config init --provider custom:{fake.url_v1} --model qwen3:0.6b" in line


def test_a_configured_model_is_kept(driver, fake):
    fake.reply(json={"data": [{"id": "first"}, {"id": "mine"}]})
    fake.completion("ok")
    config = empty_config(HUMAN_LOCAL_PORTS=str(fake.port), HUMAN_MODEL="mine")
    driver.client(config).chat("hi")
    assert fake.last.json["model"] == "mine"


def test_discovery_happens_once_per_client(driver, fake):
    fake.reply(json={"data": [{"id": "m"}]})
    fake.completion("one")
    fake.completion("two")
    client = driver.client(empty_config(HUMAN_LOCAL_PORTS=str(fake.port)))
    client.chat("hi")
    client.chat("again")
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/chat/completions", "/v1/chat/completions"]


def test_no_local_server_says_the_two_ways_to_configure(driver):
    with pytest.raises(ConfigError) as caught:
        driver.client(empty_config(HUMAN_LOCAL_PORTS=str(closed_port()))).chat("hi")
    message = str(caught.value)
    assert "no provider configured" in message and "human config init" in message
    assert "HUMAN_PROVIDER" in message and "no local server answered" in message


def test_a_server_without_models_is_not_chosen(driver, fake):
    fake.reply(json={"data": []}).as_default()
    with pytest.raises(ConfigError):
        driver.client(empty_config(HUMAN_LOCAL_PORTS=str(fake.port))).chat("hi")


def test_building_a_client_with_nothing_configured_looks_for_nothing(fake):
    """Lazy: the look happens at the first call, not when the client is made, and a dry
    run never looks at all."""
    import human

    client = human.Client(config=empty_config(HUMAN_LOCAL_PORTS=str(fake.port)))
    with pytest.raises(ConfigError, match="no provider configured"):
        client.dry_run("hi")
    client.close()
    assert fake.requests == []


def test_the_port_list_comes_from_the_environment():
    assert servers_from_env({}) == LOCAL_SERVERS
    assert servers_from_env({"HUMAN_LOCAL_PORTS": "none"}) == ()
    named = servers_from_env({"HUMAN_LOCAL_PORTS": "11434, 9999"})
    assert [(s.name, s.port, s.provider) for s in named] == [("Ollama", 11434, "ollama"), ("port 9999", 9999, None)]
    with pytest.raises(ConfigError, match="HUMAN_LOCAL_PORTS"):
        servers_from_env({"HUMAN_LOCAL_PORTS": "ollama"})


def test_a_known_server_is_named_by_its_registry_row(driver, fake, monkeypatch, caplog):
    """On a default port, the server is used under its registry name (so its row's
    settings apply) at the address that answered."""
    import human.discover as discover

    monkeypatch.setattr(discover, "LOCAL_SERVERS", (discover.LocalServer("Ollama", fake.port, "ollama"),))
    fake.reply(json={"data": [{"id": "llama3.2"}]})
    fake.completion("ok")
    with caplog.at_level(logging.WARNING, logger="human.client"):
        driver.client(empty_config()).chat("hi")
    assert fake.last.path == "/v1/chat/completions"
    assert any("human config init --provider ollama --model llama3.2" in r.getMessage() for r in caplog.records)
