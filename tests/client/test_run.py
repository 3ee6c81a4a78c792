"""The agent loop (`client.run` / `run_stream`) through both clients against the scripted
fake server: single, parallel (concurrency proven), chained and failing calls, the turn
limit, approval, bad calls, repeats, timeouts, ids, history the server accepts. The
scripted model refuses (400) any request a strict server would refuse."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Literal

import pytest

import human
from human.errors import BadRequestError, MaxTurnsError, ToolRunError

from .agent_support import Model, answer, call, pairing_problems


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
        unit: Celsius or Fahrenheit.
    """
    return f"{city}: 21 degrees {unit.upper()}"


@pytest.fixture
def client(driver, config_for, fake):
    """A client whose default provider is the fake server; `client.model` is its script."""

    def make(model: Model, entry: dict[str, Any] | None = None, providers: list[dict[str, Any]] | None = None,
             **settings: Any):
        fake.respond(model).as_default()
        handle = driver.client(config_for(entry, providers), **settings)
        handle.model = model
        return handle

    return make


# ---- the basic shapes ---------------------------------------------------------------------


def test_a_single_call_runs_and_its_result_goes_back_to_the_model(client):
    model = Model(answer(None, [call("get_weather", {"city": "Oslo"}, id="call_1")],
                         usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
                  answer("It is 21 degrees in Oslo.", usage={"prompt_tokens": 30, "completion_tokens": 7,
                                                             "total_tokens": 37}))
    result = client(model).run("Weather in Oslo?", tools=[get_weather])
    assert result.content == "It is 21 degrees in Oslo."
    first, second = model.bodies
    assert first["tools"] == [human.tool(get_weather).schema()]
    assert first["tools"][0]["function"]["parameters"]["properties"]["city"] == {
        "type": "string", "description": "The city's name."}
    assert second["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
             "id": "call_1"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Oslo: 21 degrees C"},
    ]
    [step, final] = result.steps
    [run] = step.tools
    assert (run.status, run.arguments, run.value, run.output) == (
        "ok", {"city": "Oslo"}, "Oslo: 21 degrees C", "Oslo: 21 degrees C")
    assert run.seconds >= 0 and step.seconds > 0 and final.tools == ()
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (40, 12, 52)
    assert result.messages == [*second["messages"], {"role": "assistant", "content": "It is 21 degrees in Oslo."}]
    assert result.adjustments == ()


def test_human_run_is_client_run(client, driver):
    handle = client(Model(answer("hi there")))
    outcome = human.run(handle.client, "hi", tools=[get_weather])
    result = driver.run(outcome) if driver.is_async else outcome
    assert result.content == "hi there"


def test_the_callers_messages_are_not_changed_and_the_result_continues_them(client):
    model = Model(answer("first"), answer("second"))
    handle = client(model)
    history = [human.system("Be brief."), human.user("hi")]
    result = handle.run(history, tools=[get_weather])
    assert history == [human.system("Be brief."), human.user("hi")]
    again = handle.run([*result.messages, human.user("and now?")], tools=[get_weather])
    assert model.last["messages"] == [*history, {"role": "assistant", "content": "first"},
                                      {"role": "user", "content": "and now?"}]
    assert again.content == "second"


def test_parallel_calls_run_at_the_same_time(client):
    """Two calls that each wait for the other: run one after the other, they would break
    the barrier (10 s) and fail; run concurrently, both pass it."""
    barrier = threading.Barrier(2, timeout=10)

    def wait_for_the_other(name: str) -> str:
        barrier.wait()
        return f"{name} done"

    async def wait_async(name: str) -> str:
        await asyncio.to_thread(barrier.wait)
        return f"{name} done"

    model = Model(answer(None, [call("wait_for_the_other", {"name": "a"}), call("wait_async", {"name": "b"})]),
                  answer("both done"))
    result = client(model).run("go", tools=[wait_for_the_other, wait_async])
    assert [run.output for run in result.steps[0].tools] == ["a done", "b done"]
    tool_messages = [m for m in model.last["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["a done", "b done"]  # in call order


def test_max_parallel_1_runs_the_calls_one_at_a_time(client):
    running, peak = [0], [0]
    lock = threading.Lock()

    def step(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.02)
        with lock:
            running[0] -= 1
        return n

    model = Model(answer(None, [call("step", {"n": i}, id=f"c{i}") for i in range(4)]), answer("ok"))
    result = client(model).run("go", tools=[step], max_parallel=1)
    assert [run.value for run in result.steps[0].tools] == [0, 1, 2, 3]
    assert peak[0] == 1


def test_a_chain_of_calls_feeds_each_result_into_the_next(client):
    def lookup_city(person: str) -> str:
        """Where someone lives."""
        return {"ada": "London"}[person]

    model = Model(answer(None, [call("lookup_city", {"person": "ada"})]),
                  lambda body: answer(None, [call("get_weather", {"city": body["messages"][-1]["content"]})]),
                  lambda body: answer(f"Ada's weather: {body['messages'][-1]['content']}"))
    result = client(model).run("Weather where Ada lives?", tools=[lookup_city, get_weather])
    assert result.content == "Ada's weather: London: 21 degrees C"
    assert [[run.call.name for run in step.tools] for step in result.steps] == [["lookup_city"], ["get_weather"], []]
    assert pairing_problems(result.messages) == []


async def async_weather(city: str) -> dict[str, Any]:
    """Weather as an object, from an async function."""
    await asyncio.sleep(0)
    return {"city": city, "degrees": 21}


def test_an_async_tool_runs_in_both_clients_and_a_dict_result_is_sent_as_json(client):
    model = Model(answer(None, [call("async_weather", {"city": "Oslo"})]), answer("done"))
    result = client(model).run("go", tools=[async_weather])
    assert result.steps[0].tools[0].output == '{"city": "Oslo", "degrees": 21}'


# ---- failures go back to the model ----------------------------------------------------------


def flaky(city: str) -> str:
    """Fails."""
    raise ValueError(f"no station in {city}")


def test_a_tool_that_raises_sends_its_error_back_and_the_loop_goes_on(client):
    model = Model(answer(None, [call("flaky", {"city": "Atlantis"}, id="c1")]), answer("Sorry, no data."))
    result = client(model).run("weather?", tools=[flaky])
    assert result.content == "Sorry, no data."
    [run] = result.steps[0].tools
    assert run.status == "error" and isinstance(run.error, ValueError)
    assert run.output == "error: ValueError: no station in Atlantis"
    assert model.last["messages"][-1] == {"role": "tool", "tool_call_id": "c1",
                                          "content": "error: ValueError: no station in Atlantis"}


def test_on_tool_error_raise_stops_with_the_conversation_paired(client):
    model = Model(answer(None, [call("flaky", {"city": "x"}), call("get_weather", {"city": "Oslo"})]))
    with pytest.raises(ToolRunError) as caught:
        client(model).run("weather?", tools=[flaky, get_weather], on_tool_error="raise")
    error = caught.value
    assert isinstance(error.__cause__, ValueError) and error.call.name == "flaky"
    assert pairing_problems(error.messages) == []
    assert [m["content"] for m in error.messages if m["role"] == "tool"] == [
        "error: ValueError: no station in x", "Oslo: 21 degrees C"]
    assert len(model.bodies) == 1


def test_unknown_tools_and_bad_arguments_go_back_as_errors_the_model_can_fix(client):
    model = Model(answer(None, [call("get_wether", {"city": "Oslo"}, id="a"),
                                call("get_weather", '{"city": "Oslo"', id="b"),
                                call("get_weather", {"city": 3, "unit": "k"}, id="c"),
                                call("get_weather", {}, id="d")]),
                  answer("fixed"))
    result = client(model).run("go", tools=[get_weather])
    outputs = {m["tool_call_id"]: m["content"] for m in model.last["messages"] if m["role"] == "tool"}
    assert outputs["a"] == "error: there is no tool named 'get_wether'; the tools are: get_weather"
    assert outputs["b"].startswith("error: tool call 'get_weather' (id b) has arguments that are not valid JSON")
    assert outputs["c"] == ("error: the arguments do not fit get_weather's parameters: $.city: expected a string, "
                            "got integer; $.unit: expected one of ['c', 'f'], got 'k'")
    assert outputs["d"] == "error: the arguments do not fit get_weather's parameters: $.city: required field is missing"
    assert {run.status for run in result.steps[0].tools} == {"invalid"}


def test_a_tool_that_takes_too_long_is_reported_as_timed_out(client):
    release = threading.Event()

    def slow() -> str:
        """Hangs."""
        release.wait(10)
        return "late"

    model = Model(answer(None, [call("slow")]), answer("gave up"))
    try:
        result = client(model).run("go", tools=[slow], tool_timeout=0.2)
    finally:
        release.set()
    [run] = result.steps[0].tools
    assert run.status == "timeout" and run.output == "error: the tool did not finish within 0.2 s"
    assert result.content == "gave up"


# ---- stopping -------------------------------------------------------------------------------


def test_max_turns_raises_with_every_call_answered_and_the_run_can_resume(client):
    model = Model(then=lambda body: answer(None, [call("get_weather", {"city": f"c{len(body['messages'])}"},
                                                       id=None)]))
    handle = client(model)
    with pytest.raises(MaxTurnsError) as caught:
        handle.run("go", tools=[get_weather], max_turns=3)
    error = caught.value
    assert len(model.bodies) == 3
    assert "after 3 turns" in str(error)
    assert pairing_problems(error.messages) == []
    last_results = [m["content"] for m in error.messages[-1:]]
    assert last_results == ["not run: the run reached its turn limit (max_turns=3)"]
    assert [run.status for step in error.result.steps for run in step.tools] == ["ok", "ok", "skipped"]
    model.script.append(answer("resumed"))
    assert handle.run(error.messages, tools=[get_weather]).content == "resumed"


def test_a_refused_call_is_not_run_and_the_model_is_told(client):
    ran = []

    def delete_file(path: str) -> str:
        """Deletes a file."""
        ran.append(path)
        return "deleted"

    asked = []

    def approve(tool_call: human.ToolCall) -> bool:
        asked.append((tool_call.name, tool_call.parsed_arguments()))
        return tool_call.parsed_arguments()["path"] != "/etc/passwd"

    model = Model(answer(None, [call("delete_file", {"path": "/etc/passwd"}, id="x"),
                                call("delete_file", {"path": "/tmp/a"}, id="y")]), answer("ok"))
    result = client(model).run("clean up", tools=[delete_file], approve=approve)
    assert asked == [("delete_file", {"path": "/etc/passwd"}), ("delete_file", {"path": "/tmp/a"})]
    assert ran == ["/tmp/a"]
    assert [(run.status, run.output) for run in result.steps[0].tools] == [
        ("refused", "not run: the user declined this call"), ("ok", "deleted")]


def test_an_approve_hook_that_raises_stops_the_run_with_the_conversation_paired(driver, client):
    def approve(tool_call: human.ToolCall) -> bool:
        raise RuntimeError("no terminal")

    handle = client(Model(answer(None, [call("get_weather", {"city": "Oslo"})])))
    with pytest.raises(RuntimeError, match="no terminal"):
        handle.run_stream("go", tools=[get_weather], approve=approve)
    assert pairing_problems(handle.last.messages) == []
    assert handle.last.messages[-1]["content"] == "not run: the run stopped (RuntimeError) before this call finished"


def test_ctrl_c_during_a_tool_leaves_every_call_answered(driver, client):
    def interrupted() -> str:
        """Ctrl-C arrives while it runs."""
        raise KeyboardInterrupt

    if driver.is_async:
        pytest.skip("KeyboardInterrupt inside an asyncio task is asyncio's business; covered by the plan fuzz")
    handle = client(Model(answer(None, [call("interrupted"), call("get_weather", {"city": "Oslo"})])))
    with pytest.raises(KeyboardInterrupt):
        handle.run_stream("go", tools=[interrupted, get_weather], max_parallel=1)
    assert pairing_problems(handle.last.messages) == []


def test_three_identical_calls_in_a_row_the_third_is_not_run(client):
    ran = []

    def search(query: str) -> str:
        """Searches."""
        ran.append(query)
        return "nothing"

    same = {"query": "x"}
    model = Model(*[answer(None, [call("search", same)]) for _ in range(4)], answer(None, [call("search", {
        "query": "y"})]), answer("done"))
    result = client(model).run("find x", tools=[search])
    assert ran == ["x", "x", "y"]
    statuses = [step.tools[0].status for step in result.steps[:5]]
    assert statuses == ["ok", "ok", "skipped", "skipped", "ok"]
    assert result.steps[2].tools[0].output.startswith(
        "not run: this is call number 3 in a row to search with the same arguments")


# ---- ids and history a server accepts -------------------------------------------------------


def test_calls_without_ids_or_with_repeated_ids_get_fresh_ones(client):
    model = Model(answer(None, [call("get_weather", {"city": "a"}, id=None), call("get_weather", {"city": "b"},
                                                                               id="dup"),
                                call("get_weather", {"city": "c"}, id="dup")]),
                  answer(None, [call("get_weather", {"city": "d"}, id="dup")]),
                  answer("ok"))
    result = client(model).run("go", tools=[get_weather])
    ids = [item["id"] for m in result.messages if m.get("tool_calls") for item in m["tool_calls"]]
    assert len(ids) == len(set(ids)) == 4 and "dup" in ids
    assert pairing_problems(result.messages) == []
    assert model.refusals == []


def test_a_provider_that_needs_reasoning_back_gets_it_on_tool_call_turns(client):
    """The registry flag (here set on the providers[] entry, as a user would for a
    DeepSeek-compatible server) makes the loop send reasoning_content back; without it
    the scripted server answers 400 exactly as DeepSeek does."""
    script = [answer(None, [call("get_weather", {"city": "Oslo"})], reasoning="I should check the weather."),
              answer("21 degrees.", reasoning="Now answer.")]
    with pytest.raises(BadRequestError, match="Missing `reasoning_content`"):
        client(Model(*script, require_reasoning=True)).run("weather?", tools=[get_weather])

    model = Model(*script, require_reasoning=True)
    result = client(model, entry={"reasoning_replay": "reasoning_content"}).run("weather?", tools=[get_weather])
    assert result.content == "21 degrees."
    assert model.last["messages"][1]["reasoning_content"] == "I should check the weather."
    assert "reasoning_content" not in result.messages[-1]  # not a tool-call turn: nothing to replay


def test_the_deepseek_registry_row_replays_reasoning(client, fake):
    model = Model(answer(None, [call("get_weather", {"city": "Oslo"})], reasoning="thinking"), answer("ok"),
                  require_reasoning=True)
    handle = client(model, providers=[{"name": "deepseek", "base_url": fake.url_v1, "api_key": "sk-deepseek"}])
    result = handle.run("weather?", tools=[get_weather], provider="deepseek")
    assert result.content == "ok" and model.refusals == []


def test_extra_fields_of_a_tool_call_go_back_verbatim(client):
    signature = {"google": {"thought_signature": "c2lnbmF0dXJl"}}
    model = Model(answer(None, [call("get_weather", {"city": "Oslo"}, id="g1", extra_content=signature)]),
                  answer("ok"))
    client(model).run("weather?", tools=[get_weather])
    assert model.last["messages"][1]["tool_calls"][0]["extra_content"] == signature


# ---- streaming -----------------------------------------------------------------------------


def test_run_stream_yields_chat_events_and_tool_events(client, fake):
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    tool_stream = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "s1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}}]},
        {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": '{"city": "Oslo"}'}}]}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    fake.stream(tool_stream)
    fake.stream_text("It is 21 degrees.")
    handle = client(Model())
    fake.default = None
    stream = handle.run_stream("weather?", tools=[get_weather])
    kinds = handle.types()
    assert kinds.index("tool_call_done") < kinds.index("tool_start") < kinds.index("tool_result") < kinds.index(
        "content")
    result_event = next(e for e in handle.events if e.type == "tool_result")
    assert result_event.run.output == "Oslo: 21 degrees C"
    assert handle.text() == "It is 21 degrees."
    assert stream.result.content == "It is 21 degrees."
    assert json.loads(fake.requests[0].body)["stream"] is True


def test_parallel_tool_calls_is_sent_only_when_asked_and_dropped_when_refused(client):
    def refuse(body: dict[str, Any]) -> Any:
        if "parallel_tool_calls" in body:
            return 400, {"error": {"message": "Unsupported parameter: 'parallel_tool_calls' is not supported with "
                                              "this model.", "type": "invalid_request_error",
                                   "param": "parallel_tool_calls", "code": "unsupported_parameter"}}
        return answer("ok")

    model = Model(then=refuse)
    handle = client(model)
    assert handle.run("hi", tools=[get_weather]).adjustments == ()
    assert "parallel_tool_calls" not in model.bodies[0]  # never sent unless asked for
    result = handle.run("hi", tools=[get_weather], parallel_tool_calls=True)
    assert result.content == "ok"
    assert result.adjustments == ("dropped parallel_tool_calls (the endpoint rejects it)",)
    assert [("parallel_tool_calls" in body) for body in model.bodies[1:]] == [True, False]


@pytest.mark.parametrize("driver", ["sync"], indirect=True)
def test_a_hung_tool_that_timed_out_does_not_keep_the_program_from_ending(client, fake, config_for):
    import subprocess
    import sys
    import time

    model = Model(answer(None, [call("hang"), call("hang")]), answer("gave up"))
    fake.respond(model).as_default()
    config = config_for()
    code = (
        "import time, human\n"
        "def hang() -> str:\n"
        "    '''Never returns.'''\n"
        "    time.sleep(600)\n"
        "    return 'late'\n"
        f"client = human.Client(config={str(config.files[0])!r})\n"
        "print(client.run('go', tools=[hang], tool_timeout=0.3).content)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gave up\n"
    assert time.monotonic() - started < 30  # generous: it ends as soon as the answer is printed
