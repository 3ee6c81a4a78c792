"""The official openai SDK and curl as clients of the gateway: chat, streams, tools, the
models list and the error classes the SDK raises (each error in OpenAI's shape)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import openai
import pytest

from tests.fakes.openai_server import FakeServer

from .harness import UPSTREAM_KEY

USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
TOOLS: list[Any] = [{"type": "function", "function": {"name": "get_weather", "description": "weather in a city",
                                                     "parameters": {"type": "object",
                                                                    "properties": {"city": {"type": "string"}}}}}]
HI = [{"role": "user", "content": "hi"}]


def sdk(gw: Any, key: str = "no-key-needed") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)


def test_sync_chat_answers_with_the_upstream_body_and_the_overhead_header(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.completion("hello there", usage=USAGE)
    raw = sdk(gw).chat.completions.with_raw_response.create(model="fast", messages=HI)
    answer = raw.parse()
    assert answer.choices[0].message.content == "hello there"
    assert answer.usage is not None and answer.usage.total_tokens == 12
    assert float(raw.headers["x-human-overhead-ms"]) >= 0
    assert raw.headers["x-human-provider"] == "fake"
    assert fake.last.json["model"] == "fake-model"  # the alias went upstream as the route's model


def test_async_chat(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.completion("async hello", usage=USAGE)

    async def ask() -> str | None:
        async with openai.AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0) as client:
            answer = await client.chat.completions.create(model="fake/fake-model", messages=HI)
            return answer.choices[0].message.content

    assert asyncio.run(ask()) == "async hello"


def test_sync_stream_arrives_as_chunks_and_usage_only_when_asked(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    usage_chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake-model", "choices": [],
                   "usage": USAGE}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake-model"}
    events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
              {**chunk, "choices": [{"index": 0, "delta": {"content": "Hel"}}]},
              {**chunk, "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
              usage_chunk]
    fake.stream(events)
    chunks = list(sdk(gw).chat.completions.create(model="fast", messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert all(c.usage is None for c in chunks)  # the caller did not ask: the usage chunk is cut
    assert fake.last.json["stream_options"] == {"include_usage": True}  # ... but upstream was asked

    fake.stream(events)
    chunks = list(sdk(gw).chat.completions.create(model="fast", messages=HI, stream=True,
                                                  stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12


def test_async_stream(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.stream_text("streamed through", pieces=4)

    async def collect() -> str:
        async with openai.AsyncOpenAI(base_url=gw.v1, api_key="x", max_retries=0) as client:
            stream = await client.chat.completions.create(model="fast", messages=HI, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(collect()) == "streamed through"


def test_tools_whole_and_streamed(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.completion(None, tool_calls=[TOOL_CALL], finish_reason="tool_calls", usage=USAGE)
    answer = sdk(gw).chat.completions.create(model="fast", messages=HI, tools=TOOLS)
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}
    assert fake.last.json["tools"] == TOOLS

    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake-model"}
    fake.stream([
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        *({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}}]}
          for part in ('{"city"', ': "Oslo"}')),
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ])
    chunks = list(sdk(gw).chat.completions.create(model="fast", messages=HI, tools=TOOLS, stream=True))
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index,union-attr]
                        for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(arguments) == {"city": "Oslo"}


def test_models_lists_exactly_the_ids_chat_accepts(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    client = sdk(gw)
    listed = [model.id for model in client.models.list()]
    assert sorted(listed) == ["backup/fake-model", "fake/fake-model", "fast"]
    for model_id in listed:  # every listed id is accepted ...
        fake.completion("ok", usage=USAGE)
        assert client.chat.completions.create(model=model_id, messages=HI).choices[0].message.content == "ok"
        assert client.models.retrieve(model_id).id == model_id
    with pytest.raises(openai.NotFoundError) as caught:  # ... and nothing else is
        client.chat.completions.create(model="fake-model", messages=HI)
    assert caught.value.code == "model_not_found"
    assert len(fake.requests) == 3  # the refused one never went upstream


def test_error_classes(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    client = sdk(gw)
    fake.reply(status=400, json={"error": {"message": f"bad 'temperature' for key {UPSTREAM_KEY}",
                                           "type": "invalid_request_error", "param": "temperature", "code": None}})
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="fast", messages=HI, temperature=5)
    assert bad.value.param == "temperature"
    assert UPSTREAM_KEY not in bad.value.message and UPSTREAM_KEY not in bad.value.response.text
    fake.reply(status=401, json={"error": {"message": "Incorrect API key provided"}})
    with pytest.raises(openai.APIStatusError) as upstream_auth:  # the gateway's upstream key: not the caller's 401
        client.chat.completions.create(model="fast", messages=HI)
    assert upstream_auth.value.status_code == 502 and upstream_auth.value.code == "upstream_auth"
    fake.reply(status=503, json={"error": {"message": "overloaded"}})
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="fast", messages=HI)
    assert down.value.status_code == 502
    with pytest.raises(openai.BadRequestError) as no_messages:
        client.chat.completions.create(model="fast", messages=[])
    assert no_messages.value.param == "messages"


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, text=True, check=True)


def test_curl_chat_stream_and_models(gateway: Any, fake: FakeServer) -> None:
    gw = gateway()
    fake.completion("from curl", usage=USAGE)
    body = json.dumps({"model": "fast", "messages": HI})
    answer = curl("-H", "Content-Type: application/json", "-d", body, f"{gw.v1}/chat/completions")
    assert json.loads(answer.stdout)["choices"][0]["message"]["content"] == "from curl"

    fake.stream_text("curl stream", pieces=2)
    streamed = curl("-N", "-i", "-H", "Content-Type: application/json",
                    "-d", json.dumps({"model": "fast", "messages": HI, "stream": True}), f"{gw.v1}/chat/completions")
    head, _, events = streamed.stdout.partition("\n\n")  # text mode: CRLF read as LF
    assert "x-accel-buffering: no" in head.lower() and "cache-control: no-cache" in head.lower()
    assert "x-human-overhead-ms:" in head.lower()
    assert events.rstrip().endswith("data: [DONE]")

    models = json.loads(curl(f"{gw.v1}/models").stdout)
    assert models["object"] == "list" and {m["object"] for m in models["data"]} == {"model"}
    assert json.loads(curl(f"{gw.url}/health").stdout) == {"status": "ok"}
    missing = curl("-w", "\n%{http_code}", f"{gw.url}/v2/nothing").stdout.rsplit("\n", 1)
    assert missing[1] == "404" and json.loads(missing[0])["error"]["code"] == "not_found"
