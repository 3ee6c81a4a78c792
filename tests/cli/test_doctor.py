"""`human doctor` against the scripted fake server, configured to lack one capability at
a time: the table rows, the exit code, the saved profile, and what a later `Client`
call to that endpoint then changes (and reports) because of it.

The fake answers in order, so `script()` queues replies in the order doctor sends its
probes (human/doctor/probe.py: GET /models, max_tokens, max_completion_tokens, stream,
stream usage, content parts, tools, tool stream, json_object, json_schema).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

import human
from human import doctor, profile
from human.cli import main
from human.profile import load_profile, profile_path

MODEL = "test-model"


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Fresh warn-once memory, and no real local-server scan (each test names its ports)."""
    monkeypatch.setattr(profile, "_warned", set())
    monkeypatch.setattr(doctor, "LOCAL_SERVERS", ())


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": MODEL,
                                "providers": [{"name": "local", "base_url": fake.url_v1}],
                                "reliability": {"provider_retries": 0}}))
    os.chmod(file, 0o600)
    return file


# ---- the scripted endpoint --------------------------------------------------------------------------


def rejects(fake, param: str, message: str | None = None) -> None:
    fake.reply(status=400, json={"error": {
        "message": message or f"Unsupported parameter: '{param}' is not supported with this model.",
        "type": "invalid_request_error", "param": param, "code": "unsupported_parameter"}})


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


PING_CALL = {"id": "call_1", "type": "function", "function": {"name": "ping", "arguments": "{}"}}


def script(fake, *, models: bool = True, max_tokens: bool = True, max_completion_tokens: bool = True,
           stream_options: bool = True, stream_usage: bool = True, parts: bool = True, tools: bool = True,
           tool_index: bool = True, json_object: bool = True, json_schema: bool = True) -> None:
    """Replies for one doctor run, in the order it asks; each flag False = that capability missing."""
    if models:
        fake.reply(json={"object": "list", "data": [{"id": MODEL, "object": "model"}, {"id": "other"}]})
    else:
        fake.reply(status=404, json={"detail": "Not Found"})
    fake.completion("OK") if max_tokens else rejects(fake, "max_tokens")
    if max_completion_tokens:
        fake.completion("OK")
    else:
        rejects(fake, "max_completion_tokens", "extra_forbidden: max_completion_tokens")
    fake.stream_text("1 2 3 4 5", pieces=3)
    if not stream_options:
        rejects(fake, "stream_options", "stream_options: Extra inputs are not permitted")
    else:
        usage = [{"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 1,
                                                      "total_tokens": 10}}] if stream_usage else []
        fake.stream([chunk({"role": "assistant", "content": "OK"}), chunk({}, "stop"), *usage])
    fake.completion("OK") if parts else rejects(
        fake, "messages", "messages[0].content: Input should be a valid string")
    if tools:
        fake.completion(None, tool_calls=[PING_CALL], finish_reason="tool_calls")
        start = {"id": "call_1", "type": "function", "function": {"name": "ping", "arguments": ""}}
        more = {"function": {"arguments": "{}"}}
        if tool_index:
            start, more = {"index": 0, **start}, {"index": 0, **more}
        fake.stream([chunk({"role": "assistant", "content": None, "tool_calls": [start]}),
                     chunk({"tool_calls": [more]}), chunk({}, "tool_calls")])
    else:
        rejects(fake, "tools", "tools is not supported for this model")
    fake.completion('{"ok": true}') if json_object else rejects(fake, "response_format")
    fake.completion('{"ok": true}') if json_schema else rejects(fake, "response_format")


def doctor_run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(out: str) -> dict[str, tuple[str, str]]:
    """The table as {check: (result, detail)}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("check ")) + 2
    table = {}
    for line in lines[start:]:
        if not line.strip():
            break
        name, status, *detail = re.split(r"\s{2,}", line.strip(), maxsplit=2)
        table[name] = (status, detail[0] if detail else "")
    return table


def statuses(out: str) -> dict[str, str]:
    return {name: status for name, (status, _) in rows(out).items()}


ALL_ROWS = ["config", "key", "endpoint", "auth", "model", "chat", "stream", "stream usage", "token field",
            "content parts", "tools", "tool stream", "json_object", "json_schema", "latency"]


def later_client(cfg: Path, **settings: Any) -> human.Client:
    return human.Client(config=cfg, retries=0, **settings)


# ---- a healthy endpoint ---------------------------------------------------------------------------


def test_healthy_endpoint_passes_every_row_and_exits_0(fake, cfg, capsys):
    script(fake)
    code, out, err = doctor_run(capsys, "--config", str(cfg))
    assert code == 0, out + err
    assert list(rows(out)) == ALL_ROWS
    assert set(statuses(out).values()) == {"pass"}
    assert f"doctor will send up to 11 requests to {fake.url_v1}" in err
    assert "to fix:" not in out
    assert rows(out)["tool stream"][1].startswith("fragments carry index and id")
    assert rows(out)["model"][1] == f"{MODEL} is listed by GET /models (2 models)"


def test_probes_are_small_and_counted(fake, cfg, capsys):
    script(fake)
    doctor_run(capsys, "--config", str(cfg))
    assert len(fake.requests) == 10
    assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/v1/models")
    chats = [r.json for r in fake.requests[1:]]
    assert all(r["model"] == MODEL for r in chats)
    assert all(r.get("max_tokens", r.get("max_completion_tokens")) <= 16 for r in chats)
    assert chats[0].get("max_tokens") == 16 and "max_completion_tokens" not in chats[0]
    assert chats[1].get("max_completion_tokens") == 16 and "max_tokens" not in chats[1]
    assert "stream_options" not in chats[2] and chats[2]["stream"] is True
    assert chats[3]["stream_options"] == {"include_usage": True}
    assert isinstance(chats[4]["messages"][0]["content"], list)
    assert chats[5]["tools"][0]["function"]["name"] == "ping"
    assert chats[6]["stream"] is True and chats[6]["tools"]
    assert chats[7]["response_format"] == {"type": "json_object"}
    assert chats[8]["response_format"]["type"] == "json_schema"


def test_healthy_endpoint_saves_a_profile_that_changes_nothing(fake, cfg, capsys):
    script(fake)
    _, out, _ = doctor_run(capsys, "--config", str(cfg))
    saved = load_profile("local", fake.url_v1, MODEL)
    assert saved is not None
    assert (saved.accepts_max_tokens, saved.accepts_max_completion_tokens, saved.accepts_stream_options,
            saved.streams_usage, saved.accepts_content_parts, saved.supports_tools, saved.tool_deltas_have_index,
            saved.tool_deltas_have_id, saved.supports_json_object, saved.supports_json_schema,
            saved.honours_json_object, saved.honours_json_schema, saved.calls_tools) == (True,) * 13
    assert saved.first_token_s is not None and saved.probed_at
    assert saved.drop == frozenset() and saved.rename == {}
    assert f"profile: saved to {profile_path()}; no request changes needed" in out


def test_json_prints_the_same_rows(fake, cfg, capsys):
    script(fake, stream_options=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg), "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert [c["name"] for c in data["checks"]] == ALL_ROWS
    usage = next(c for c in data["checks"] if c["name"] == "stream usage")
    assert usage["status"] == "fail" and usage["advice"]
    assert data["changes"] == {"drop": ["stream_options"], "rename": {}}
    assert data["profile"]["accepts_stream_options"] is False
    assert (data["provider"], data["model"], data["requests"]) == ("local", MODEL, 10)
    assert data["local_servers"] is not None  # no --provider: the scan ran (on no ports here)


def test_no_save_leaves_no_profile(fake, cfg, capsys):
    script(fake)
    _, out, _ = doctor_run(capsys, "--config", str(cfg), "--no-save")
    assert not profile_path().exists()
    assert "profile: not saved (--no-save)" in out


def test_doctor_reprobes_and_overwrites_an_old_profile(fake, cfg, capsys):
    script(fake, stream_options=False)
    doctor_run(capsys, "--config", str(cfg))
    assert load_profile("local", fake.url_v1, MODEL).accepts_stream_options is False
    fake.reset()
    script(fake)
    doctor_run(capsys, "--config", str(cfg))
    assert load_profile("local", fake.url_v1, MODEL).accepts_stream_options is True


# ---- one capability missing at a time ---------------------------------------------------------------


def test_max_tokens_rejected_renames_it_in_later_calls(fake, cfg, capsys, caplog):
    script(fake, max_tokens=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    table = rows(out)
    assert code == 1
    assert table["token field"] == ("fail", "max_tokens rejected; max_completion_tokens accepted")
    assert table["chat"][0] == "pass" and "with max_completion_tokens" in table["chat"][1]
    assert "token field: human renames max_tokens to max_completion_tokens here" in out
    assert "human will rename max_tokens to max_completion_tokens for this endpoint" in out
    assert all("max_tokens" not in r.json for r in fake.requests[3:])  # later probes use the working field
    saved = load_profile("local", fake.url_v1, MODEL)
    assert (saved.accepts_max_tokens, saved.accepts_max_completion_tokens) == (False, True)

    fake.reset()
    fake.completion("hi").completion("again")
    with caplog.at_level(logging.WARNING, logger="human.client"), later_client(cfg) as client:
        answer = client.chat("hi", max_tokens=5)
        client.chat("hi", max_tokens=5)
    sent = fake.requests[0].json
    assert sent["max_completion_tokens"] == 5 and "max_tokens" not in sent
    assert answer.adjustments == ("renamed max_tokens to max_completion_tokens (the endpoint rejects max_tokens)",)
    warnings = [r for r in caplog.records if r.name == "human.client" and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per process, not per call
    assert "renamed max_tokens to max_completion_tokens" in warnings[0].getMessage()
    assert "[local/test-model]" in warnings[0].getMessage()


def test_max_completion_tokens_rejected_is_fine_when_max_tokens_is_sent(fake, cfg, capsys):
    script(fake, max_completion_tokens=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 0
    assert rows(out)["token field"] == ("pass", "max_tokens accepted (human sends it); max_completion_tokens rejected")
    saved = load_profile("local", fake.url_v1, MODEL)
    assert saved.rename == {"max_completion_tokens": "max_tokens"}
    fake.reset()
    fake.completion("hi")
    with later_client(cfg) as client:
        answer = client.chat("hi", extra_body={"max_completion_tokens": 7})
    assert fake.last.json["max_tokens"] == 7 and "max_completion_tokens" not in fake.last.json
    assert answer.adjustments == ("renamed max_completion_tokens to max_tokens "
                                  "(the endpoint rejects max_completion_tokens)",)


def test_stream_options_rejected_is_dropped_from_later_streams(fake, cfg, capsys, caplog, tmp_path):
    script(fake, stream_options=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    status, detail = rows(out)["stream usage"]
    assert status == "fail" and detail.startswith("stream_options rejected: HTTP 400")
    assert "stream usage: human leaves stream_options out here" in out
    assert load_profile("local", fake.url_v1, MODEL).drop == {"stream_options"}

    # a config that asks for usage in streams (stream_usage: true) now leaves stream_options out
    wants_usage = tmp_path / "usage.json"
    data = json.loads(cfg.read_text())
    data["providers"][0]["stream_usage"] = True
    wants_usage.write_text(json.dumps(data))
    os.chmod(wants_usage, 0o600)
    fake.reset()
    fake.stream([chunk({"content": "hi"}), chunk({}, "stop")])
    with caplog.at_level(logging.WARNING, logger="human.client"), later_client(wants_usage) as client:
        stream = client.stream("hi")
        response = stream.until_done()
    assert "stream_options" not in fake.last.json and fake.last.json["stream"] is True
    assert response.adjustments == ("dropped stream_options (the endpoint rejects it)",)
    assert "dropped stream_options" in caplog.text


def test_stream_without_usage_fails_its_row_but_changes_nothing(fake, cfg, capsys):
    script(fake, stream_usage=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert rows(out)["stream usage"] == ("fail", "stream_options accepted, but no usage arrived")
    saved = load_profile("local", fake.url_v1, MODEL)
    assert (saved.accepts_stream_options, saved.streams_usage) == (True, False)
    assert saved.drop == frozenset()


def test_array_content_rejected(fake, cfg, capsys):
    script(fake, parts=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    status, detail = rows(out)["content parts"]
    assert status == "fail" and detail.startswith("rejected: HTTP 400")
    assert "content parts: human sends text-only messages as plain strings" in out
    assert load_profile("local", fake.url_v1, MODEL).accepts_content_parts is False
    assert statuses(out)["tools"] == "pass"


def test_no_tools(fake, cfg, capsys):
    script(fake, tools=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    table = rows(out)
    assert code == 1
    assert table["tools"][0] == "fail" and "tools is not supported" in table["tools"][1]
    assert table["tool stream"] == ("n/a", "tools failed")
    assert "tools: pick a model with tool support" in out
    saved = load_profile("local", fake.url_v1, MODEL)
    assert saved.supports_tools is False and saved.tool_deltas_have_index is None
    assert len(fake.requests) == 9  # no tool stream probe

    fake.reset()
    rejects(fake, "tools", "tools is not supported for this model")
    with later_client(cfg) as client, pytest.raises(human.BadRequestError):
        client.chat("hi", tools=[{"name": "f", "parameters": {"type": "object"}}])
    assert fake.last.json["tools"]  # tools are never dropped: the 400 is the honest answer


def test_tool_fragments_without_index_still_pass(fake, cfg, capsys):
    script(fake, tool_index=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 0
    assert rows(out)["tool stream"] == ("pass", "fragments lack index; human assembles them anyway")
    saved = load_profile("local", fake.url_v1, MODEL)
    assert (saved.tool_deltas_have_index, saved.tool_deltas_have_id) == (False, True)


def test_model_that_never_calls_the_tool(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    fake.completion("OK").completion("OK")
    fake.stream_text("1 2 3")
    fake.stream([chunk({"content": "OK"}), chunk({}, "stop")])
    fake.completion("OK")  # content parts
    fake.completion("I cannot call tools.")  # tools: accepted, answered in text
    fake.completion('{"ok": true}').completion('{"ok": true}')
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert rows(out)["tools"] == ("pass", "accepted, but the model answered in text instead of calling the tool")
    assert rows(out)["tool stream"] == ("n/a", "no tool call to stream")
    assert len(fake.requests) == 9


def test_json_modes_both_rejected_drop_response_format_later(fake, cfg, capsys):
    script(fake, json_object=False, json_schema=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert statuses(out)["json_object"] == statuses(out)["json_schema"] == "fail"
    assert "json_object: human leaves response_format out here" in out
    fake.reset()
    fake.completion('{"a": 1}')
    with later_client(cfg) as client:
        answer = client.chat("hi", response_format="json_object")
    assert "response_format" not in fake.last.json
    assert answer.adjustments == ("dropped response_format (the endpoint rejects it)",)


def test_json_schema_rejected_alone_keeps_response_format(fake, cfg, capsys):
    script(fake, json_schema=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert "json_schema: use response_format 'json_object' with this endpoint" in out
    assert load_profile("local", fake.url_v1, MODEL).drop == frozenset()


def test_json_mode_accepted_but_ignored_fails(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    fake.completion("OK").completion("OK")
    fake.stream_text("1 2 3")
    fake.stream([chunk({"content": "OK"}), chunk({}, "stop")])
    fake.completion("OK")
    fake.completion("no tools here")
    fake.completion("Sure! Here it is").completion('{"ok": true}')
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert rows(out)["json_object"][0] == "fail"
    assert rows(out)["json_object"][1].startswith("accepted but not honoured")
    assert rows(out)["json_schema"] == ("pass", "accepted; the answer is JSON")
    saved = load_profile("local", fake.url_v1, MODEL)
    assert saved.supports_json_object is True  # not dropped
    # ... but known to be ignored, so structured output does not rely on it
    assert (saved.honours_json_object, saved.honours_json_schema) == (False, True)


def test_no_models_route_is_not_a_failure(fake, cfg, capsys):
    script(fake, models=False)
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 0
    assert rows(out)["model"] == ("n/a", f"{MODEL}: the server has no GET /models route")


def test_unlisted_model_that_does_not_answer_fails_with_suggestions(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": "test-model-v2"}, {"id": "llama"}]})
    fake.reply(status=404, json={"error": {"message": f"model '{MODEL}' not found"}}).as_default()
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    table = rows(out)
    assert code == 1
    assert table["model"] == ("fail", f"{MODEL} is not among the 2 models GET /models lists")
    assert "model: did you mean test-model-v2?" in out
    assert table["chat"][0] == "fail"
    assert table["stream"] == ("n/a", "plain chat failed")
    assert "profile: nothing learned, nothing saved" in out
    assert not profile_path().exists()


def test_model_is_picked_from_the_list_when_none_is_configured(fake, tmp_path, capsys):
    script(fake)
    code, out, _ = doctor_run(capsys, "--provider", f"custom:{fake.url_v1}")
    assert code == 0
    assert rows(out)["model"] == ("pass", f"{MODEL} (the first of 2 from GET /models; pass --model to pick another)")
    assert fake.requests[1].json["model"] == MODEL
    assert load_profile(f"custom:{fake.url_v1}", fake.url_v1, MODEL) is not None


def test_401_fails_auth_and_stops(fake, cfg, capsys):
    fake.reply(status=401, json={"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    table = rows(out)
    assert code == 1
    assert table["endpoint"][0] == "pass"
    assert table["auth"] == ("fail", "HTTP 401: Invalid API key")
    assert "auth: the server wants a key" in out and "add \"api_key\" to the providers[] entry 'local'" in out
    assert {table[name][0] for name in ALL_ROWS[4:]} == {"n/a"}
    assert len(fake.requests) == 1
    assert not profile_path().exists()


def test_401_with_a_key_says_which_key_was_refused(fake, tmp_path, capsys):
    file = tmp_path / "keyed.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": MODEL, "providers": [
        {"name": "local", "base_url": fake.url_v1, "api_key_env": "LOCAL_API_KEY"}]}))
    os.chmod(file, 0o600)
    os.environ["LOCAL_API_KEY"] = "sk-wrong-0123456789abcdef"
    try:
        fake.reply(status=200, json={"data": [{"id": MODEL}]})
        fake.reply(status=401, json={"error": {"message": "Incorrect API key provided"}})
        code, out, _ = doctor_run(capsys, "--config", str(file))
    finally:
        del os.environ["LOCAL_API_KEY"]
    assert code == 1
    assert rows(out)["key"] == ("pass", "sk-w…(25 chars) from env LOCAL_API_KEY")
    assert "auth: the server refused the key from env LOCAL_API_KEY" in out
    assert "sk-wrong-0123456789abcdef" not in out


def test_403_fails_auth_with_permission_advice(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    fake.reply(status=403, json={"error": {"message": "not allowed to use this model"}})
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert rows(out)["auth"][0] == "fail"
    assert "auth: the key is valid but may not use this model" in out


def test_server_down_fails_the_endpoint_row(tmp_path, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    file = tmp_path / "down.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": MODEL,
                                "providers": [{"name": "local", "base_url": f"http://127.0.0.1:{port}/v1"}]}))
    code, out, _ = doctor_run(capsys, "--config", str(file))
    table = rows(out)
    assert code == 1
    assert table["endpoint"][0] == "fail"
    assert f"endpoint: is the server running on http://127.0.0.1:{port}/v1?" in out
    assert table["chat"] == ("n/a", "the endpoint did not answer")


def test_broken_config_fails_the_first_row(tmp_path, capsys):
    file = tmp_path / "bad.json"
    file.write_text('{"default_provider": ')
    code, out, _ = doctor_run(capsys, "--config", str(file))
    assert code == 1
    assert rows(out)["config"][0] == "fail"
    assert rows(out)["endpoint"] == ("n/a", "the config did not load")


def test_missing_key_for_a_cloud_provider_fails_the_key_row(tmp_path, capsys):
    code, out, _ = doctor_run(capsys, "--provider", "groq", "--model", "llama-3.3-70b-versatile")
    assert code == 1
    assert rows(out)["key"][0] == "fail"
    assert "key: provider 'groq' needs an API key; set GROQ_API_KEY" in out


# ---- no provider: look for local servers ----------------------------------------------------------


def test_without_a_provider_doctor_lists_local_servers(fake, capsys, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setattr(doctor, "LOCAL_SERVERS", (doctor.LocalServer("Ollama", fake.port),
                                                  doctor.LocalServer("vLLM", closed)))
    fake.reply(json={"object": "list", "data": [{"id": "qwen3:0.6b"}, {"id": "llama3.2"}]})
    code, out, _ = doctor_run(capsys)
    assert code == 1  # nothing configured
    assert rows(out)["endpoint"] == ("fail", "no provider configured")
    assert f"endpoint: try: human doctor --provider custom:{fake.url_v1}" in out
    assert "local servers on 127.0.0.1 (default ports):" in out
    found = [line for line in out.splitlines() if line.startswith("Ollama")]
    assert found and fake.url_v1 in found[0] and "2 models: qwen3:0.6b, llama3.2" in found[0]
    assert "vLLM" not in out
    assert (fake.requests[0].method, fake.requests[0].path) == ("GET", "/v1/models")


def test_scan_falls_back_to_models_without_v1(fake):
    fake.reply(status=404, json={"detail": "Not Found"})
    fake.reply(json={"data": [{"id": "m"}]})
    (found,) = doctor.scan_local([doctor.LocalServer("llama.cpp", fake.port)])
    assert (found.base_url, found.models) == (fake.url, ("m",))
    assert [r.path for r in fake.requests] == ["/v1/models", "/models"]


def test_scan_reports_a_port_that_is_not_an_openai_server(fake):
    fake.reply(status=404, body=b"nope", content_type="text/plain").as_default()
    (found,) = doctor.scan_local([doctor.LocalServer("LiteLLM", fake.port)])
    assert found.models is None and "HTTP 404" in found.detail


def test_scan_with_nothing_listening_finds_nothing():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert doctor.scan_local([doctor.LocalServer("sglang", port)]) == []


def test_naming_a_provider_skips_the_scan(fake, cfg, capsys, monkeypatch):
    monkeypatch.setattr(doctor.probe, "scan_local", lambda *a, **k: pytest.fail("scanned"))
    script(fake)
    code, out, _ = doctor_run(capsys, "--config", str(cfg), "--provider", "local")
    assert code == 0 and "local servers" not in out


# ---- the profile in the async client --------------------------------------------------------------


def test_async_client_applies_the_profile_too(fake, cfg, capsys):
    script(fake, max_tokens=False, stream_options=False)
    doctor_run(capsys, "--config", str(cfg))
    fake.reset()
    fake.completion("hi")

    async def call() -> human.ChatResponse:
        async with human.AsyncClient(config=cfg, retries=0) as client:
            return await client.chat("hi", max_tokens=3)

    answer = asyncio.run(call())
    assert fake.last.json["max_completion_tokens"] == 3 and "max_tokens" not in fake.last.json
    assert answer.adjustments == ("renamed max_tokens to max_completion_tokens (the endpoint rejects max_tokens)",)


def test_profiles_false_sends_exactly_what_was_asked(fake, cfg, capsys):
    script(fake, max_tokens=False)
    doctor_run(capsys, "--config", str(cfg))
    fake.reset()
    fake.completion("hi")
    with later_client(cfg, profiles=False) as client:
        answer = client.chat("hi", max_tokens=5)
    assert fake.last.json["max_tokens"] == 5 and answer.adjustments == ()


def test_profile_of_another_base_url_is_not_applied(fake, cfg, capsys, tmp_path):
    script(fake, max_tokens=False)
    doctor_run(capsys, "--config", str(cfg))
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps({"default_provider": "local", "default_model": MODEL,
                                 "providers": [{"name": "local", "base_url": fake.url}]}))  # no /v1: another URL
    os.chmod(moved, 0o600)
    fake.reset()
    fake.completion("hi")
    with later_client(moved) as client:
        answer = client.chat("hi", max_tokens=5)
    assert fake.last.json["max_tokens"] == 5 and answer.adjustments == ()


# ---- only a rejection teaches the profile anything ----------------------------------------------------


def test_a_server_error_on_a_probe_leaves_the_capability_unknown(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    fake.completion("OK").completion("OK")
    fake.stream_text("1 2 3")
    fake.reply(status=500, json={"error": {"message": "upstream hiccup"}})  # the stream_options probe
    fake.completion("OK")
    fake.completion(None, tool_calls=[PING_CALL], finish_reason="tool_calls")
    fake.stream([chunk({"tool_calls": [{"index": 0, **PING_CALL}]}), chunk({}, "tool_calls")])
    fake.completion('{"ok": true}').completion('{"ok": true}')
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert rows(out)["stream usage"] == ("fail", "HTTP 500: upstream hiccup")
    assert "stream usage: the server failed: see its logs" in out
    saved = load_profile("local", fake.url_v1, MODEL)
    assert saved.accepts_stream_options is None and saved.drop == frozenset()


def test_both_token_fields_failing_for_another_reason_teaches_nothing(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    fake.reply(status=400, json={"error": {"message": "messages: prompt is malformed"}}).as_default()
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert code == 1
    assert rows(out)["chat"][0] == "fail"
    assert rows(out)["token field"] == ("n/a", "plain chat failed")
    assert not profile_path().exists()


def test_both_token_fields_rejected_drops_both_in_later_calls(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    rejects(fake, "max_tokens")
    rejects(fake, "max_completion_tokens")
    fake.completion("OK")  # a third probe, with no token limit at all
    fake.stream_text("1 2 3")
    fake.stream([chunk({"content": "OK"}), chunk({}, "stop")])
    fake.completion("OK")
    fake.completion("no tools")
    fake.completion('{"ok": true}').completion('{"ok": true}')
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    table = rows(out)
    assert code == 1
    assert table["token field"] == ("fail", "max_tokens and max_completion_tokens both rejected")
    assert table["chat"][0] == "pass" and "without a token limit" in table["chat"][1]
    assert len(fake.requests) == 10
    assert all("max_tokens" not in r.json and "max_completion_tokens" not in r.json for r in fake.requests[3:])
    assert load_profile("local", fake.url_v1, MODEL).drop == {"max_tokens", "max_completion_tokens"}
    fake.reset()
    fake.completion("hi")
    with later_client(cfg) as client:
        answer = client.chat("hi", max_tokens=5)
    assert "max_tokens" not in fake.last.json
    assert answer.adjustments == ("dropped max_tokens (the endpoint rejects it)",)


def test_both_token_fields_and_no_limit_failing_saves_nothing(fake, cfg, capsys):
    fake.reply(json={"data": [{"id": MODEL}]})
    rejects(fake, "max_tokens")
    rejects(fake, "max_completion_tokens")
    fake.reply(status=404, json={"error": {"message": "model not found"}})
    code, out, _ = doctor_run(capsys, "--config", str(cfg))
    assert rows(out)["chat"] == ("fail", "HTTP 404: model not found")
    assert rows(out)["token field"] == ("fail", "max_tokens and max_completion_tokens both rejected")
    assert len(fake.requests) == 4
    assert not profile_path().exists()


def test_probes_ignore_fallbacks_and_the_configured_token_limit(fake, tmp_path, capsys):
    file = tmp_path / "fallbacks.json"
    file.write_text(json.dumps({
        "default_provider": "local", "default_model": MODEL, "max_tokens": 4096,
        "providers": [{"name": "local", "base_url": fake.url_v1, "stream_usage": True},
                      {"name": "backup", "base_url": "http://127.0.0.1:9/v1"}],
        "reliability": {"provider_retries": 3, "fallback_providers": ["backup"],
                        "model_fallbacks": {MODEL: ["smaller-model"]}}}))
    os.chmod(file, 0o600)
    script(fake, stream_options=False)
    code, out, _ = doctor_run(capsys, "--config", str(file))
    assert len(fake.requests) == 10  # one try each: no retries, no fallback model
    assert all(r.json.get("max_tokens", r.json.get("max_completion_tokens")) == 16 for r in fake.requests[1:])
    assert "stream_options" not in fake.requests[3].json  # the plain stream probe, despite stream_usage: true
    assert rows(out)["stream usage"][0] == "fail"
