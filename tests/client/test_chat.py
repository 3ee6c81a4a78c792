"""Chat requests through both clients against the scripted fake server: what goes on the
wire, and what comes back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import human
from human.errors import BadResponseError, ToolArgumentsError
from tests.client.conftest import CANARY

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_plain_chat_returns_content_usage_and_who_served_it(driver, fake, config_for):
    fake.completion("Hello there", usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    answer = driver.client(config_for()).chat([human.user("hi")])
    assert answer.content == "Hello there"
    assert answer.usage == human.Usage(5, 2, 7)
    assert answer.finish_reason == "stop"
    assert (answer.provider, answer.model_requested, answer.attempt) == ("local", "test-model", 1)
    assert answer.raw["choices"][0]["message"]["content"] == "Hello there"


def test_wire_request_is_exactly_what_was_asked(driver, fake, config_for):
    fake.completion("ok")
    driver.client(config_for()).chat([human.system("Be brief."), human.user("hi")])
    request = fake.last
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.json == {"model": "test-model", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
    assert request.headers["Authorization"] == f"Bearer {CANARY}"
    assert request.headers["Content-Type"] == "application/json"


def test_temperature_zero_is_sent_as_zero(driver, fake, config_for):
    fake.completion("ok")
    driver.client(config_for()).chat("hi", temperature=0)
    assert fake.last.json["temperature"] == 0


def test_config_temperature_and_max_tokens_are_forwarded(driver, fake, config_for):
    fake.completion("ok")
    driver.client(config_for(default_temperature=0, max_tokens=99)).chat("hi")
    assert fake.last.json["temperature"] == 0
    assert fake.last.json["max_tokens"] == 99


def test_token_field_follows_the_provider(driver, fake, config_for):
    fake.completion("ok")
    driver.client(config_for({"token_field": "max_completion_tokens"})).chat("hi", max_tokens=50)
    assert fake.last.json["max_completion_tokens"] == 50
    assert "max_tokens" not in fake.last.json


def test_model_string_goes_out_untouched(driver, fake, config_for):
    fake.completion("ok")
    driver.client(config_for(), model="openrouter/meta-llama/llama-3:free").chat("hi")
    assert fake.last.json["model"] == "openrouter/meta-llama/llama-3:free"


def test_all_options_reach_the_wire(driver, fake, config_for):
    fake.completion("{}")
    driver.client(config_for()).chat(
        "hi", tools=[TOOL], tool_choice="auto", parallel_tool_calls=False, response_format="json_object",
        stop=["\n"], seed=7, top_p=0.5, reasoning_effort="low", extra_body={"min_p": 0.1})
    sent = fake.last.json
    assert sent["tools"] == [TOOL] and sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    assert sent["response_format"] == {"type": "json_object"}
    assert (sent["stop"], sent["seed"], sent["top_p"], sent["reasoning_effort"], sent["min_p"]) == (
        ["\n"], 7, 0.5, "low", 0.1)


def test_json_schema_response_format(driver, fake, config_for):
    fake.completion('{"a": 1}')
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    driver.client(config_for()).chat("hi", response_format=schema)
    assert fake.last.json["response_format"] == {"type": "json_schema",
                                                 "json_schema": {"name": "response", "schema": schema}}


def test_text_only_parts_go_out_as_a_string(driver, fake, config_for):
    fake.completion("ok")
    driver.client(config_for()).chat([{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                    {"type": "text", "text": "b"}]}])
    assert fake.last.json["messages"][0]["content"] == "ab"


def test_local_image_is_sent_as_a_data_uri(driver, fake, config_for, tmp_path: Path):
    image = tmp_path / "dot.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    fake.completion("a dot")
    driver.client(config_for()).chat([human.user("what is this?", image, "https://example.com/x.jpg")])
    parts = fake.last.json["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[2]["image_url"]["url"] == "https://example.com/x.jpg"


def test_tool_round_trip_messages(driver, fake, config_for):
    fake.completion(None, tool_calls=[{"id": "call_1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}],
                    finish_reason="tool_calls")
    fake.completion("It is sunny.")
    handle = driver.client(config_for())
    history = [human.user("weather in Paris?")]
    first = handle.chat(history, tools=[TOOL])
    call = first.tool_calls[0]
    assert (call.id, call.name, call.parsed_arguments()) == ("call_1", "get_weather", {"city": "Paris"})
    history += [first.to_message(), human.tool_result(call.id, {"temp": 21})]
    assert handle.chat(history, tools=[TOOL]).content == "It is sunny."
    sent = fake.last.json["messages"]
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'}


def test_bad_tool_arguments_are_reported_clearly(driver, fake, config_for):
    fake.completion(None, tool_calls=[{"id": "c", "type": "function",
                                       "function": {"name": "f", "arguments": '{"city": "Par'}}])
    call = driver.client(config_for()).chat("hi").tool_calls[0]
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        call.parsed_arguments()


def test_error_inside_a_200_is_an_error_not_an_empty_answer(driver, fake, config_for):
    fake.reply(json={"error": {"message": "upstream exploded", "type": "server_error"}})
    with pytest.raises(BadResponseError, match="upstream exploded"):
        driver.client(config_for(reliability={"provider_retries": 0})).chat("hi")


def test_html_page_with_200_is_an_error_that_mentions_base_url(driver, fake, config_for):
    fake.reply(body=b"<!DOCTYPE html><html><body>Welcome</body></html>", content_type="text/html")
    with pytest.raises(BadResponseError, match="HTML"):
        driver.client(config_for(reliability={"provider_retries": 0})).chat("hi")


def test_connections_are_reused(driver, fake, config_for):
    for _ in range(3):
        fake.completion("ok")
    handle = driver.client(config_for())
    for _ in range(3):
        assert handle.chat("hi").content == "ok"
    assert fake.connections == 1


def test_dry_run_masks_the_key_and_sends_nothing(driver, fake, config_for):
    preview = driver.client(config_for()).client.dry_run("hi", temperature=0)
    assert preview["url"] == fake.url_v1 + "/chat/completions"
    assert CANARY not in json.dumps(preview)
    assert preview["headers"]["Authorization"].startswith("Bearer sk-c")
    assert preview["body"] == {"model": "test-model", "messages": [{"role": "user", "content": "hi"}],
                               "temperature": 0}
    assert fake.requests == []


def test_models_lists_the_servers_own_models(driver, fake, config_for):
    fake.reply(json={"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b", "object": "model"}]})
    models = driver.client(config_for()).models()
    assert [m["id"] for m in models] == ["a", "b"]
    assert (fake.last.method, fake.last.path) == ("GET", "/v1/models")


def test_closed_client_refuses_work(driver, config_for):
    handle = driver.client(config_for())
    handle.close()
    with pytest.raises(human.ClientClosedError):
        handle.chat("hi")
