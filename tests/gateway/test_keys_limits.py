"""The gateway's keys (hashed, revocable, limited to models) and limits (RPM, TPM with
reservation and refund, budgets, 429 with Retry-After), body size, and the refusal to
listen beyond loopback without keys."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from human.cli import main
from human.config import load_config
from human.errors import ConfigError
from human.gateway import build
from human.gateway.keys import KeyFile, Keyring, split_key
from tests.fakes.openai_server import FakeServer

from .harness import write_config

HI = [{"role": "user", "content": "hi"}]
USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def post(url: str, key: str | None, body: dict[str, Any] | bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + "/v1/chat/completions", data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_keys_are_stored_hashed_and_checked(keyfile: KeyFile) -> None:
    record, key = keyfile.create("alice", models=["fast"], rpm=10)
    text = keyfile.path.read_text()
    assert split_key(key) == (record.id, key.split("-", 2)[2])
    assert key.split("-", 2)[2] not in text and record.digest in text
    assert keyfile.path.stat().st_mode & 0o777 == 0o600
    ring = Keyring(keyfile.load())
    assert ring.check(key) == record
    assert ring.check(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert ring.check(f"hgw-{'0' * 12}-{key.split('-', 2)[2]}") is None
    keyfile.revoke("alice")
    assert Keyring(keyfile.load()).check(key) is None


def test_cli_prints_a_new_key_once_and_lists_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, {"gateway": {"keys_file": str(tmp_path / "keys.json")}})
    assert main(["--config", str(config), "gateway", "keys", "create", "bob", "--rpm", "5", "--budget", "2",
                 "--budget-period", "day"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("hgw-")
    assert main(["--config", str(config), "gateway", "keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "bob" in listed and "$2/day" in listed and key.split("-", 2)[2] not in listed
    assert main(["--config", str(config), "gateway", "keys", "revoke", "bob"]) == 0
    assert main(["--config", str(config), "gateway", "keys", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_requests_need_a_valid_key_once_keys_exist(gateway: Any, fake: FakeServer, keyfile: KeyFile) -> None:
    _, key = keyfile.create("alice")
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    status, _, body = post(gw.url, None, {"model": "fast", "messages": HI})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert post(gw.url, "hgw-nothing", {"model": "fast", "messages": HI})[0] == 401
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
    assert all("hgw-" not in str(r.headers) for r in fake.requests)  # the caller's key never goes upstream
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.v1, api_key="wrong", max_retries=0).models.list()


def test_a_revoked_key_is_refused_by_a_running_gateway(gateway: Any, fake: FakeServer, keyfile: KeyFile) -> None:
    _, key = keyfile.create("alice")
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
    keyfile.revoke("alice")  # the last key: the gateway must close, not open
    deadline = time.monotonic() + 5
    while post(gw.url, key, {"model": "fast", "messages": HI})[0] != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 401
    assert post(gw.url, None, {"model": "fast", "messages": HI})[0] == 401


def test_a_key_sees_and_uses_only_its_models(gateway: Any, fake: FakeServer, keyfile: KeyFile) -> None:
    _, key = keyfile.create("alice", models=["fast"])
    gw = gateway()
    client = openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)
    assert [model.id for model in client.models.list()] == ["fast"]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="backup/fake-model", messages=HI)
    assert not fake.requests


def test_a_body_over_the_limit_is_refused(gateway: Any, fake: FakeServer) -> None:
    gw = gateway(max_body_bytes=2048)
    status, _, body = post(gw.url, None, {"model": "fast", "messages": [{"role": "user", "content": "x" * 4096}]})
    assert status == 413 and body["error"]["code"] == "request_too_large"
    status, _, body = post(gw.url, None, b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert not fake.requests


def test_listening_beyond_loopback_needs_keys(tmp_path: Path, fake: FakeServer, keyfile: KeyFile,
                                             config: dict[str, Any]) -> None:
    loaded = load_config(write_config(tmp_path, config))
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0 without gateway keys"):
        build(loaded, host="0.0.0.0", port=0)
    keyfile.create("alice")
    build(loaded, host="0.0.0.0", port=0)  # checks pass; nothing is bound by build()


def test_a_route_whose_upstream_has_no_key_refuses_to_start(tmp_path: Path, config: dict[str, Any]) -> None:
    config["routes"] = {"models": ["groq/llama-3.1-8b-instant"]}
    with pytest.raises(ConfigError, match="route 'groq/llama-3.1-8b-instant'.*GROQ_API_KEY"):
        build(load_config(write_config(tmp_path, config)), port=0)


def test_exactly_the_rpm_limit_passes_under_64_concurrent_callers(gateway: Any, fake: FakeServer,
                                                                  keyfile: KeyFile) -> None:
    _, key = keyfile.create("alice", rpm=10)
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    results: list[tuple[int, dict[str, str]]] = []
    lock = threading.Lock()

    def call() -> None:
        status, headers, _ = post(gw.url, key, {"model": "fast", "messages": HI})
        with lock:
            results.append((status, headers))

    threads = [threading.Thread(target=call) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 10 and statuses.count(429) == 54
    refused = [headers for status, headers in results if status == 429]
    assert all(0 < int(h["Retry-After"]) <= 6 and int(h["retry-after-ms"]) > 0 for h in refused)
    assert len(fake.requests) == 10


def test_tpm_reserves_the_estimate_and_refunds_the_difference(gateway: Any, fake: FakeServer,
                                                             keyfile: KeyFile) -> None:
    """max_tokens=400 reserves ~410 of a 1,000 TPM bucket; each answer used 12, so after four
    the bucket holds ~950, not ~360: a fifth reserving ~910 goes. One asking for more than
    the bucket holds goes only when it is full (core/limiter.py), so it is refused."""
    _, key = keyfile.create("alice", tpm=1000)
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    body = {"model": "fast", "messages": HI, "max_tokens": 400}
    statuses = [post(gw.url, key, body)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 200]
    assert post(gw.url, key, {**body, "max_tokens": 900})[0] == 200  # refunds arrived
    status, headers, error = post(gw.url, key, {**body, "max_tokens": 5000})
    assert status == 429 and error["error"]["type"] == "requests" and int(headers["Retry-After"]) >= 1
    assert len(fake.requests) == 5


def test_a_spent_budget_refuses_with_insufficient_quota(gateway: Any, fake: FakeServer, keyfile: KeyFile,
                                                       config: dict[str, Any]) -> None:
    config["prices"] = [{"provider": "fake", "model": "*", "input_mtok": 1_000_000, "output_mtok": 1_000_000}]
    _, key = keyfile.create("alice", budget=20.0)  # 12 tokens at $1 each: the second request overshoots
    gw = gateway()
    fake.completion("ok", usage=USAGE).as_default()
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
    status, headers, body = post(gw.url, key, {"model": "fast", "messages": HI})
    assert status == 429 and body["error"]["code"] == "insufficient_quota" and headers["x-should-retry"] == "false"
    assert len(fake.requests) == 2
