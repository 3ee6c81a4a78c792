"""human gateway in front of real third-party servers (the LiteLLM proxy with mock models,
aimock), called by the official openai SDK: answers, streams, tools and usage come
through as the upstream sent them, each request leaves a usage row, and the upstreams'
errors reach the caller as the SDK's exceptions (the gateway's own, not a 500)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from human.store import open_store
from tests.gateway.harness import Running, start

from .interop_support import LITELLM_KEY, ROOT, Server, journal

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gateway(tmp_path: Path, litellm: Server, aimock: Server, test_id: str) -> Iterator[Running]:
    config = {
        "providers": [
            {"name": "litellm", "base_url": litellm.base_url, "api_key": LITELLM_KEY},
            {"name": "aimock", "base_url": aimock.base_url, "headers": {"X-Test-Id": test_id}},
        ],
        "routes": {"models": ["litellm/mock-gpt", "litellm/mock-tools", "litellm/mock-429",
                              "litellm/mock-context-window", "litellm/mock-midstream-error", "aimock/any-model"]},
        "reliability": {"provider_retries": 0},
        "timeouts": {"first_byte": 20, "total": 60},
        "gateway": {"keys_file": str(tmp_path / "keys.json"), "log_path": str(tmp_path / "logs.db")},
    }
    gw = start(tmp_path, config)
    yield gw
    gw.close()


def sdk(gw: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0, timeout=60)


def usage_rows(tmp_path: Path) -> list[Any]:
    store = open_store(tmp_path / "logs.db")
    try:
        return store.usage(None, ["model"])
    finally:
        store.close()


def test_litellm_whole_and_streamed_through_the_gateway(gateway: Running, tmp_path: Path) -> None:
    client = sdk(gateway)
    whole = client.chat.completions.create(model="litellm/mock-gpt", messages=HI)
    assert whole.choices[0].message.content and whole.usage is not None
    chunks = list(client.chat.completions.create(model="litellm/mock-gpt", messages=HI, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    # the caller did not ask for usage: no usage-only chunk (LiteLLM puts usage on its finish
    # chunk too, which is forwarded as it is: a field the SDKs read as they would OpenAI's)
    assert all(chunk.choices for chunk in chunks)
    with_usage = list(client.chat.completions.create(model="litellm/mock-gpt", messages=HI, stream=True,
                                                     stream_options={"include_usage": True}))
    assert with_usage[-1].usage is not None and with_usage[-1].usage.total_tokens > 0
    gateway.close()
    (row,) = usage_rows(tmp_path)
    assert row.exchanges == 3 and row.prompt_tokens > 0 and row.completion_tokens > 0


def test_litellm_tool_calls_through_the_gateway(gateway: Running) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    answer = sdk(gateway).chat.completions.create(model="litellm/mock-tools", messages=HI, tools=tools)
    calls = answer.choices[0].message.tool_calls
    assert calls and calls[0].function.name and json.loads(calls[0].function.arguments) is not None


def test_litellm_errors_reach_the_caller_as_the_sdks_exceptions(gateway: Running) -> None:
    client = sdk(gateway)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="litellm/mock-429", messages=HI)
    assert "litellm" in limited.value.message
    with pytest.raises(openai.BadRequestError) as too_long:
        client.chat.completions.create(model="litellm/mock-context-window", messages=HI)
    assert too_long.value.status_code == 400
    with pytest.raises((openai.APIError, openai.InternalServerError)):
        for _ in client.chat.completions.create(model="litellm/mock-midstream-error", messages=HI, stream=True):
            pass


def test_aimock_stream_through_the_gateway_asks_upstream_for_usage(gateway: Running, aimock: Server,
                                                                   test_id: str) -> None:
    client = sdk(gateway)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in
                   client.chat.completions.create(model="aimock/any-model", messages=HI, stream=True)
                   if chunk.choices)
    assert text == "Hello from aimock."
    (sent,) = [entry["body"] for entry in journal(aimock, test_id)]
    assert sent["model"] == "any-model" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}  # metered, though the caller did not ask


LITELLM_SDK = '''
import asyncio, json, sys
import litellm
url = sys.argv[1]
hi = [{"role": "user", "content": "hi"}]
whole = litellm.completion(model="openai/aimock/any-model", api_base=url, api_key="unused", messages=hi)
text = "".join(c.choices[0].delta.content or "" for c in litellm.completion(
    model="openai/aimock/any-model", api_base=url, api_key="unused", messages=hi, stream=True) if c.choices)
async def main():
    return await litellm.acompletion(model="openai/aimock/any-model", api_base=url, api_key="unused", messages=hi)
answer = asyncio.run(main())
print(json.dumps([whole.choices[0].message.content, text, answer.choices[0].message.content]))
'''


def test_the_litellm_sdk_as_a_client_of_the_gateway(gateway: Running, litellm: Server) -> None:
    """A peer's client (the LiteLLM SDK, from the proxy's own venv) calls the gateway as an
    OpenAI-compatible server: whole, streamed and async answers arrive whole."""
    python = Path(os.environ.get("LITELLM_VENV") or Path(os.environ.get("STATE_DIR") or ROOT / ".servers")
                  / "venv-litellm") / "bin" / "python"
    assert python.exists(), f"the LiteLLM proxy answers but its venv is not at {python.parent.parent}"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no fetch of the price map from GitHub
    done = subprocess.run([str(python), "-c", LITELLM_SDK, gateway.v1], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["Hello from aimock."] * 3
