"""`human chat` and friends as a script sees them (pipes, exit codes), for the defects of
issue 11: the whole-call --timeout, one-line failure summaries with advice that names
what the user can change, the length notice, usage on streams, warnings once, config
validate, `providers show` for a local provider, `human models` errors, and the
zero-config start."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from pathlib import Path

import pytest

from human.cli import main

from .test_cli import CANARY, chunk, human


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(tmp_path: Path, data: dict, name: str = "config.json") -> Path:
    file = tmp_path / name
    file.write_text(json.dumps(data))
    os.chmod(file, 0o600)
    return file


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    return write(tmp_path, {"default_provider": "local", "default_model": "test-model",
                            "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
                            "reliability": {"provider_retries": 2, "provider_backoff_ms": 500}})


# ---- defect 3: --timeout is the whole call -----------------------------------------------------


def test_timeout_covers_every_attempt_and_names_the_flag(fake, cfg):
    fake.hang(10).as_default()
    started = time.monotonic()
    result = human("chat", "--config", str(cfg), "--timeout", "1", "hi")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 3.5  # the process starts in ~0.3 s; before issue 11 this took 4+ s (3 tries + waits)
    assert len(fake.requests) == 1
    assert result.stderr.count("\n") == 1
    assert "timeout of 1 s" in result.stderr and "--timeout" in result.stderr


# ---- defect 4: one line for all attempts; advice the user can act on ----------------------------


def test_all_attempts_failed_is_one_line_and_debug_lists_them(fake, tmp_path):
    cfg = write(tmp_path, {"default_provider": "local", "default_model": "test-model",
                           "providers": [{"name": "local", "base_url": fake.url_v1}],
                           "reliability": {"provider_retries": 2, "provider_backoff_ms": 1}})
    fake.reply(status=503, json={"error": {"message": "overloaded"}}).as_default()
    result = human("chat", "--config", str(cfg), "hi")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr  # four lines before issue 11
    assert "3 attempts failed, each with: [local/test-model] HTTP 503" in result.stderr
    assert "--debug lists each attempt" in result.stderr
    debug = human("chat", "--config", str(cfg), "--debug", "hi")
    assert "  1. local/test-model: [local/test-model] HTTP 503" in debug.stderr
    assert "  3. local/test-model:" in debug.stderr


def _no_dns(monkeypatch) -> list[str]:
    lookups: list[str] = []

    def fail(host, *args, **kwargs):
        lookups.append(str(host))
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: fail(address[0]))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # nothing piped in
    return lookups


def test_no_network_on_a_built_in_url_is_one_try_and_no_base_url_advice(monkeypatch, capsys):
    lookups = _no_dns(monkeypatch)
    monkeypatch.setenv("GROQ_API_KEY", CANARY)
    code = main(["chat", "--provider", "groq", "--model", "llama-3.3-70b-versatile", "--no-stream", "hi"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(lookups) == 1  # a DNS failure was retried three times before issue 11
    assert err.count("\n") == 1 and "cannot resolve the host of https://api.groq.com" in err
    assert "check base_url" not in err and "groq's URL is built in" in err and "network" in err
    assert CANARY not in err


def test_a_host_the_user_set_that_does_not_resolve_points_at_base_url(monkeypatch, capsys, tmp_path):
    _no_dns(monkeypatch)
    cfg = write(tmp_path, {"default_provider": "office", "default_model": "m",
                           "providers": [{"name": "office", "base_url": "https://llm.office.invalid/v1"}]})
    assert main(["chat", "--config", str(cfg), "hi"]) == 1
    assert f"check base_url (set in {cfg})" in capsys.readouterr().err


# ---- defect 6: an answer cut at the token limit says so -----------------------------------------


def test_length_finish_is_noticed_on_stderr_and_in_json(fake, cfg):
    fake.stream([chunk("partial ans"), {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}])
    result = human("chat", "--config", str(cfg), "--max-tokens", "3", "hi")
    assert result.returncode == 0 and result.stdout == "partial ans\n"
    assert 'cut off at the output limit of 3 tokens (finish_reason "length")' in result.stderr
    assert "--max-tokens" in result.stderr
    fake.completion("partial", finish_reason="length")
    data = json.loads(human("chat", "--config", str(cfg), "--json", "hi").stdout)
    assert data["finish_reason"] == "length" and "--max-tokens" in data["notices"][0]


# ---- defect 7: --usage on a stream asks for usage -----------------------------------------------


USAGE = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_usage_on_a_stream_sends_stream_options(fake, cfg):
    fake.stream([chunk("hi"), USAGE])
    result = human("chat", "--config", str(cfg), "--usage", "hi")
    assert result.returncode == 0
    assert fake.last.json["stream_options"] == {"include_usage": True}  # not sent before issue 11
    assert "usage: prompt 3, completion 2, total 5" in result.stderr


def test_a_server_that_rejects_stream_options_is_remembered(fake, cfg, tmp_path):
    state = {"HU_STATE_DIR": str(tmp_path / "state")}
    fake.reply(status=400, json={"error": {"message": "Unrecognized request argument supplied: stream_options",
                                           "type": "invalid_request_error", "param": "stream_options"}})
    fake.stream([chunk("hello")])
    result = human("chat", "--config", str(cfg), "--usage", "hi", env=state)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert "rejects stream_options" in result.stderr and "not reported by the server" in result.stderr
    assert "stream_options" in fake.requests[0].json and "stream_options" not in fake.requests[1].json
    saved = json.loads((tmp_path / "state" / "profiles.json").read_text())["profiles"]
    (profile,) = saved.values()
    assert profile["accepts_stream_options"] is False
    fake.reset()
    fake.stream([chunk("again")])
    again = human("chat", "--config", str(cfg), "--usage", "hi", env=state)
    assert again.returncode == 0 and len(fake.requests) == 1  # no second 400: the profile remembered
    assert "stream_options" not in fake.last.json


# ---- defect 8: warnings once; config validate; providers show; models errors -------------------


def test_a_config_warning_is_printed_once(fake, tmp_path):
    cfg = write(tmp_path, {"default_provider": "local", "default_model": "m", "colour": "blue",
                           "providers": [{"name": "local", "base_url": fake.url_v1}]})
    fake.stream([chunk("ok")])
    result = human("chat", "--config", str(cfg), "hi")
    assert result.returncode == 0
    assert result.stderr.count("unknown key 'colour'") == 1, result.stderr  # twice before issue 11


@pytest.mark.parametrize("data,says", [
    ({"default_provider": "groq"}, "no default_model"),
    ({"default_provider": "compatible", "default_model": "m"}, "needs a base_url"),
    ({"default_provider": "mine", "default_model": "m",
      "providers": [{"name": "mine", "base_url": "localhost:8000/v1"}]}, "not an http(s) URL"),
    ({"default_provider": "groq", "default_model": "m",
      "reliability": {"fallback_providers": ["compatible"]}}, "'compatible'"),
])
def test_config_validate_fails_a_config_that_cannot_work(tmp_path, data, says):
    result = human("config", "validate", "--config", str(write(tmp_path, data)))
    assert result.returncode == 2, result.stdout  # "ok" before issue 11
    assert says in result.stderr and not result.stdout.startswith("ok")


def test_config_validate_passes_a_working_config(cfg):
    result = human("config", "validate", "--config", str(cfg))
    assert result.returncode == 0 and result.stdout.startswith("ok: ")


def test_providers_show_for_a_local_provider_says_none(tmp_path):
    result = human("providers", "show", "ollama", "--model", "m")
    assert result.returncode == 0
    assert "total none" in result.stdout and "Nones" not in result.stdout


def test_models_connection_error_names_the_provider(tmp_path):
    cfg = write(tmp_path, {"default_provider": "mine", "default_model": "m",
                           "providers": [{"name": "mine", "base_url": f"http://127.0.0.1:{closed_port()}/v1"}]})
    result = human("models", "--config", str(cfg))
    assert result.returncode == 1
    assert "[?]" not in result.stderr and "human: error: [mine] connection refused" in result.stderr


# ---- the zero-config start ----------------------------------------------------------------------


def test_zero_config_uses_a_local_server_and_says_how_to_keep_it(fake, tmp_path):
    fake.reply(json={"data": [{"id": "qwen3:0.6b"}]})
    fake.stream([chunk("hello from local")])
    env = {"HOME": str(tmp_path), "HUMAN_LOCAL_PORTS": f"{closed_port()},{fake.port}"}
    result = human("chat", "hi", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from local\n"
    assert result.stderr.count("\n") == 1
    assert f"human config init --provider custom:{fake.url_v1} --model qwen3:0.6b" in result.stderr
    assert fake.last.json["model"] == "qwen3:0.6b"


def test_zero_config_without_a_local_server_exits_2_with_both_ways(tmp_path):
    env = {"HOME": str(tmp_path), "HUMAN_LOCAL_PORTS": str(closed_port())}
    result = human("chat", "hi", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "human config init" in result.stderr and "HUMAN_PROVIDER" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_dry_run_never_looks_for_a_local_server(fake, tmp_path):
    env = {"HOME": str(tmp_path), "HUMAN_LOCAL_PORTS": str(fake.port)}
    result = human("chat", "--dry-run", "hi", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "does not look for local servers" in result.stderr
    assert fake.requests == []
