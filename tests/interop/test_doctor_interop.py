"""`human doctor` against real third-party servers (aimock, the LiteLLM proxy), configured
as a user would. Both are mocks: they accept every parameter and ignore response_format,
so what doctor must find is known exactly. Skipped (with the start command) when the
servers are not running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from human.doctor import MAX_REQUESTS, PROBE_TOKENS, diagnose
from human.profile import load_profile

from .interop_support import aimock_config, journal, litellm_config

pytestmark = pytest.mark.interop

ROWS = ["config", "key", "endpoint", "auth", "model", "chat", "stream", "stream usage", "token field",
        "content parts", "tools", "tool stream", "json_object", "json_schema", "latency"]


def table(report) -> dict[str, tuple[str, str]]:
    return {check.name: (check.status, check.detail) for check in report.checks}


def test_doctor_on_aimock_finds_what_aimock_does(aimock, test_id, write_config):
    report = diagnose(config=write_config(aimock_config(aimock, test_id, "any-model")), provider="compatible")
    rows = table(report)
    assert list(rows) == ROWS
    passing = ["config", "key", "endpoint", "auth", "model", "chat", "stream", "stream usage", "token field",
               "content parts", "tools", "latency"]
    assert {name: rows[name][0] for name in passing} == dict.fromkeys(passing, "pass"), rows
    assert rows["auth"][1] == "no key needed"
    assert rows["chat"][1].endswith("'Hello from aimock.'")
    assert rows["token field"][1] == "max_tokens and max_completion_tokens both accepted"
    assert rows["tool stream"] == ("n/a", "no tool call to stream")  # aimock answers any-model in text
    # aimock accepts response_format and ignores it: doctor says so
    assert rows["json_object"][0] == rows["json_schema"][0] == "fail"
    assert rows["json_object"][1].startswith("accepted but not honoured")
    assert report.ok is False

    bodies = [entry["body"] for entry in journal(aimock, test_id)]  # the chat probes (GETs are not journalled)
    assert len(bodies) == report.requests - 1 <= MAX_REQUESTS - 1
    assert all(body.get("max_tokens", body.get("max_completion_tokens")) <= PROBE_TOKENS for body in bodies)

    saved = load_profile("compatible", aimock.base_url, "any-model")
    assert saved is not None and saved.drop == frozenset() and saved.rename == {}
    assert (saved.accepts_stream_options, saved.streams_usage, saved.supports_tools) == (True, True, True)


def test_doctor_on_aimock_tool_model_sees_index_and_id(aimock, test_id, write_config):
    report = diagnose(config=write_config(aimock_config(aimock, test_id, "mock-tools")), provider="compatible",
                      save=False)
    rows = table(report)
    assert rows["tools"] == ("pass", "the model called get_weather")
    assert rows["tool stream"][0] == "pass" and rows["tool stream"][1].startswith("fragments carry index and id")
    assert report.profile is not None
    assert (report.profile.tool_deltas_have_index, report.profile.tool_deltas_have_id) == (True, True)
    assert report.saved_to is None


def test_doctor_on_aimock_with_keys_and_none_sent_fails_auth(aimock_auth, test_id, write_config):
    report = diagnose(config=write_config(aimock_config(aimock_auth, test_id, "any-model")), provider="compatible")
    rows = table(report)
    assert rows["endpoint"][0] == "pass"
    assert rows["auth"][0] == "fail" and "HTTP 401" in rows["auth"][1]
    assert {rows[name][0] for name in ROWS[4:]} == {"n/a"}
    assert report.profile is None and report.saved_to is None


def test_doctor_on_litellm(litellm, write_config):
    report = diagnose(config=write_config(litellm_config(litellm)), provider="litellm")
    rows = table(report)
    passing = ["config", "key", "endpoint", "auth", "model", "chat", "stream", "stream usage", "token field",
               "content parts", "tools", "latency"]
    assert {name: rows[name][0] for name in passing} == dict.fromkeys(passing, "pass"), rows
    assert rows["key"][1].startswith("sk-t…(14 chars) from providers['litellm'].api_key in ")
    assert rows["auth"][1] == "key accepted"
    assert rows["model"][1].startswith("mock-gpt is listed by GET /models")
    assert rows["chat"][1].endswith("'Hello from the LiteLLM mock se'…")
    assert rows["json_object"][0] == "fail"  # the mock answers in text whatever the format
    saved = load_profile("litellm", litellm.base_url, "mock-gpt")
    assert saved is not None and saved.drop == frozenset()


def test_doctor_on_litellm_without_a_key_fails_auth(litellm, write_config):
    config = litellm_config(litellm)
    del config["providers"][0]["api_key"]
    report = diagnose(config=write_config(config), provider="litellm")
    rows = table(report)
    assert rows["auth"][0] == "fail" and "HTTP 401" in rows["auth"][1]
    assert any(c.name == "auth" and "wants a key" in c.advice for c in report.checks)


def test_doctor_command_json_on_aimock(aimock, test_id, write_config, tmp_path: Path):
    config = write_config(aimock_config(aimock, test_id, "any-model"))
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "human", "doctor", "--config", str(config), "--provider", "compatible", "--json"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(home)}, check=False)
    data = json.loads(result.stdout)
    assert result.returncode == 1  # json modes not honoured by the mock
    assert [c["name"] for c in data["checks"]] == ROWS
    assert data["url"] == aimock.base_url + "/chat/completions"
    assert f"doctor will send up to {MAX_REQUESTS} requests to {aimock.base_url}" in result.stderr
    assert (home / ".human" / "state" / "profiles.json").exists()
