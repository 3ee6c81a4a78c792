"""The batch runner through the library (`human.batch` and `AsyncClient.batch`) against the
fake server: every result under its own custom_id, failures written with their typed
error, checks before anything is sent, resume, 429s, stops that can be resumed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

import human
import human.transport.aio  # noqa: F401 - imported now, not inside the first timed run (it blocks the loop)
from human import AsyncClient, BatchInputError, BatchStoppedError
from tests.batch.conftest import CANARY, prompt, read_output, write_input
from tests.fakes.batch_replies import BatchReplies, answer_for


@pytest.fixture(params=["human.batch", "AsyncClient.batch"])
def run(request: pytest.FixtureRequest, config: Path) -> Any:
    """run(input, output, **options) through one of the two entry points."""

    def sync(source: Path, output: Path, **options: Any) -> human.BatchSummary:
        return human.batch(source, output, config=options.pop("config", config), **options)

    def through_client(source: Path, output: Path, **options: Any) -> human.BatchSummary:
        async def main() -> human.BatchSummary:
            async with AsyncClient(config=options.pop("config", config)) as client:
                return await client.batch(source, output, **options)

        return asyncio.run(main())

    return sync if request.param == "human.batch" else through_client


def successes(path: Path) -> dict[str, dict[str, Any]]:
    return {line["custom_id"]: line for line in read_output(path) if line["error"] is None}


# ---- results ----------------------------------------------------------------------------------


def test_every_line_gets_its_own_answer_whatever_order_they_finish_in(fake, tmp_path, run):
    replies = BatchReplies(fake, jitter=0.02)
    source = write_input(tmp_path / "in.jsonl", 60)
    summary = run(source, tmp_path / "out.jsonl", concurrency=8)
    lines = read_output(tmp_path / "out.jsonl")
    assert summary.complete and (summary.sent, summary.succeeded, summary.failed) == (60, 60, 0)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"q{n}" for n in range(60))
    for line in lines:  # keyed by custom_id, never by position
        number = int(line["custom_id"][1:])
        assert line["response"]["body"]["choices"][0]["message"]["content"] == answer_for(prompt(number))
        assert line["human"]["line"] == number + 1
    order = [int(line["custom_id"][1:]) for line in lines]
    assert order != sorted(order)  # they did finish out of order
    assert 2 <= replies.peak <= 8


def test_openai_batch_lines_send_their_body_and_fields_the_client_does_not_name(fake, tmp_path, run, replies):
    body = {"model": "other-model", "messages": [{"role": "user", "content": "hi"}], "temperature": 0,
            "max_completion_tokens": 12, "logprobs": True}
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                                  "body": body}) + "\n")
    run(source, tmp_path / "out.jsonl")
    sent = fake.last.json
    assert sent["model"] == "other-model" and sent["temperature"] == 0 and sent["logprobs"] is True
    assert sent["max_tokens"] == 12 and fake.last.path == "/v1/chat/completions"


def test_a_line_that_fails_on_its_own_is_written_with_its_typed_error(fake, tmp_path, run, replies):
    fake.reply(status=400, json={"error": {"message": "This model's maximum context length is 8192 tokens",
                                           "code": "context_length_exceeded"}})
    source = write_input(tmp_path / "in.jsonl", 3)
    summary = run(source, tmp_path / "out.jsonl", concurrency=1)
    lines = read_output(tmp_path / "out.jsonl")
    failed = [line for line in lines if line["error"] is not None]
    assert (summary.succeeded, summary.failed, len(lines)) == (2, 1, 3)
    assert failed[0]["custom_id"] == "q0" and failed[0]["response"]["status_code"] == 400
    assert failed[0]["error"]["type"] == "ContextLengthError"
    assert failed[0]["error"]["code"] == "context_length_exceeded"


def test_the_summary_counts_tokens_and_cost_equal_the_output_files(fake, tmp_path, run, replies):
    fake.reply(status=503, json={"error": {"message": "overloaded"}})
    source = write_input(tmp_path / "in.jsonl", 12)
    run(source, tmp_path / "out.jsonl", concurrency=1)
    write_input(source, 20)  # the same 12 lines and 8 more
    summary = run(source, tmp_path / "out.jsonl", concurrency=4)
    lines = read_output(tmp_path / "out.jsonl")
    ok = [line for line in lines if line["error"] is None]
    assert summary.output_succeeded == len(ok) == 19 and summary.output_failed == 1 == len(lines) - len(ok)
    assert summary.output_prompt_tokens == sum(line["human"].get("prompt_tokens", 0) for line in lines)
    assert summary.output_completion_tokens == sum(line["human"].get("completion_tokens", 0) for line in lines)
    assert summary.output_cost == sum(line["human"].get("cost") or 0.0 for line in lines)
    assert summary.output_unpriced == sum(1 for line in ok if line["human"].get("cost") is None)
    assert (summary.already_done, summary.sent, summary.succeeded) == (12, 8, 8)
    body_tokens = sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in ok)
    assert summary.output_prompt_tokens == body_tokens


# ---- checks before sending --------------------------------------------------------------------


def test_duplicates_and_malformed_lines_are_refused_before_any_request(fake, tmp_path, run, replies):
    source = write_input(tmp_path / "in.jsonl", 5)
    with open(source, "a") as file:
        file.write('{"custom_id": "q2", "messages": [{"role": "user", "content": "again"}]}\n')
        file.write("{oops\n")
        file.write("\n")  # blank lines are fine
        file.write('{"custom_id": "q9", "messages": 5}\n')
    with pytest.raises(BatchInputError) as caught:
        run(source, tmp_path / "out.jsonl")
    assert [number for number, _ in caught.value.problems] == [6, 7, 9]
    message = str(caught.value)
    assert "line 6 repeats custom_id 'q2' (first on line 3)" in message and "line 7 is not valid JSON" in message
    assert "nothing was sent" in message and "--skip-invalid" in message
    assert fake.requests == [] and not (tmp_path / "out.jsonl").exists()


def test_skip_invalid_sends_the_valid_lines_and_no_line_of_a_repeated_id(fake, tmp_path, run, replies):
    source = write_input(tmp_path / "in.jsonl", 4)
    with open(source, "a") as file:
        file.write('{"custom_id": "q1", "messages": [{"role": "user", "content": "again"}]}\n')
        file.write("{oops\n")
    summary = run(source, tmp_path / "out.jsonl", skip_invalid=True)
    assert sorted(successes(tmp_path / "out.jsonl")) == ["q0", "q2", "q3"]
    assert (summary.invalid, summary.sent, len(fake.requests)) == (2, 3, 3)


def test_a_line_without_a_model_needs_a_default(fake, tmp_path, make_config, run, replies):
    config = tmp_path / "bare.json"
    config.write_text(json.dumps({"default_provider": "local", "providers": [
        {"name": "local", "base_url": fake.url_v1, "api_key": CANARY}]}))
    os.chmod(config, 0o600)
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "model": "m1", "messages": [{"role": "user", "content": "x"}]}\n'
                      '{"custom_id": "b", "messages": [{"role": "user", "content": "y"}]}\n')
    with pytest.raises(BatchInputError, match='line 2 has no "model"'):
        run(source, tmp_path / "out.jsonl", config=config)
    assert fake.requests == []


def test_a_missing_input_file_is_a_clear_error(tmp_path, run):
    with pytest.raises(BatchInputError, match="no input file"):
        run(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")


def test_dry_run_counts_and_estimates_and_touches_nothing(fake, tmp_path, run, replies):
    source = write_input(tmp_path / "in.jsonl", 6, max_tokens=50)
    with open(source, "a") as file:
        file.write('{"custom_id": "x", "model": "big-model", "messages": [{"role": "user", "content": "hello"}]}\n')
    summary = run(source, tmp_path / "out.jsonl", dry_run=True)
    models = summary.estimate["models"]
    assert summary.dry_run and fake.requests == [] and not (tmp_path / "out.jsonl").exists()
    assert models["test-model"]["requests"] == 6 and models["test-model"]["completion_limit"] == 300
    assert models["test-model"]["prompt_tokens"] == 6 * 9  # "question N": 3 tokens + 3 framing + 3 priming
    assert models["test-model"]["prompt_cost"] == pytest.approx(54e-6)  # PRICES: $1 and $2 per million
    assert models["test-model"]["completion_limit_cost"] == pytest.approx(300 * 2e-6)
    # an unpriced model on a local server (the fake is on 127.0.0.1) is free, as its answers would be
    assert models["big-model"] == {"provider": "local", "requests": 1, "prompt_tokens": 8, "completion_limit": 0,
                                   "without_limit": 1, "prompt_cost": 0.0, "completion_limit_cost": 0.0}


# ---- resume -----------------------------------------------------------------------------------


def test_a_rerun_sends_only_what_the_output_does_not_hold(fake, tmp_path, run, replies):
    source = write_input(tmp_path / "in.jsonl", 10)
    output = tmp_path / "out.jsonl"
    run(source, output)
    kept = output.read_text().splitlines(keepends=True)[:4]
    output.write_text("".join(kept))
    fake.requests.clear()
    summary = run(source, output)
    assert (summary.already_done, summary.sent, len(fake.requests)) == (4, 6, 6)
    assert sorted(successes(output)) == sorted(f"q{n}" for n in range(10)) and len(read_output(output)) == 10


def test_a_torn_last_line_is_cut_and_its_request_sent_again(fake, tmp_path, run, replies):
    source = write_input(tmp_path / "in.jsonl", 5)
    output = tmp_path / "out.jsonl"
    run(source, output)
    whole = output.read_bytes()
    output.write_bytes(whole[: len(whole) - 25])  # a write cut short by a kill
    fake.requests.clear()
    summary = run(source, output)
    assert summary.repaired_bytes == len(whole.splitlines(keepends=True)[-1]) - 25
    assert len(fake.requests) == 1 and summary.sent == 1
    assert len(read_output(output)) == 5 and sorted(successes(output)) == [f"q{n}" for n in range(5)]


def test_failures_stay_failed_unless_retry_failed_and_then_leave_one_line_per_id(fake, tmp_path, run, replies):
    fake.reply(status=500, json={"error": {"message": "boom"}})
    source = write_input(tmp_path / "in.jsonl", 4)
    output = tmp_path / "out.jsonl"
    first = run(source, output, concurrency=1)
    assert first.failed == 1 and not successes(output).get("q0")
    fake.requests.clear()
    again = run(source, output)
    assert again.sent == 0 and fake.requests == [] and again.output_failed == 1
    retried = run(source, output, retry_failed=True)
    lines = read_output(output)
    assert retried.retried_failures == 1 and retried.sent == 1 and len(fake.requests) == 1
    assert len(lines) == 4 and len({line["custom_id"] for line in lines}) == 4 and retried.output_failed == 0


def test_the_errors_file_holds_the_failure_lines(fake, tmp_path, run, replies):
    fake.reply(status=400, json={"error": {"message": "bad"}})
    source = write_input(tmp_path / "in.jsonl", 3)
    run(source, tmp_path / "out.jsonl", concurrency=1, errors=tmp_path / "errors.jsonl")
    errors = read_output(tmp_path / "errors.jsonl")
    assert [line["custom_id"] for line in errors] == ["q0"] and errors[0]["error"]["type"] == "BadRequestError"


def test_an_output_made_from_other_requests_is_refused(fake, tmp_path, run, replies):
    source = write_input(tmp_path / "in.jsonl", 3)
    output = tmp_path / "out.jsonl"
    run(source, output)
    changed = tmp_path / "changed.jsonl"
    write_input(changed, 3, temperature=1)
    with pytest.raises(BatchInputError, match="changed since"):
        run(changed, output)
    other = write_input(tmp_path / "other.jsonl", 2, start=100)
    with pytest.raises(BatchInputError, match="not in"):
        run(other, output)
    (tmp_path / "notes.txt").write_text("my notes\n")
    with pytest.raises(BatchInputError, match="does not look like the output of a batch run"):
        run(source, tmp_path / "notes.txt")


def test_a_cancelled_run_keeps_whole_lines_and_resumes(fake, tmp_path, config):
    BatchReplies(fake, delay=0.01)
    source = write_input(tmp_path / "in.jsonl", 200)
    output = tmp_path / "out.jsonl"

    async def cut_short() -> None:
        async with AsyncClient(config=config) as client:
            task = asyncio.ensure_future(client.batch(source, output, concurrency=4))
            while not output.exists() or output.read_bytes().count(b"\n") < 20:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(cut_short())
    partial = read_output(output)
    assert 20 <= len(partial) < 200
    summary = human.batch(source, output, config=config, concurrency=16)
    assert summary.already_done == len(partial) and len(successes(output)) == 200 == len(read_output(output))


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(fake, tmp_path, config):
    BatchReplies(fake, delay=0.05)
    source = write_input(tmp_path / "in.jsonl", 40)
    output = tmp_path / "out.jsonl"

    async def both() -> None:
        async with AsyncClient(config=config) as client:
            first = asyncio.ensure_future(client.batch(source, output, concurrency=2))
            while not output.exists():
                await asyncio.sleep(0.005)
            with pytest.raises(BatchInputError, match="being written by another"):
                await client.batch(source, output)
            await first

    asyncio.run(both())
    assert len(successes(output)) == 40


# ---- limits and 429s --------------------------------------------------------------------------


def test_a_429_storm_pauses_every_send_for_retry_after(fake, tmp_path, run):
    replies = BatchReplies(fake)
    replies.storm(8, retry_after="0.6")
    source = write_input(tmp_path / "in.jsonl", 16)
    summary = run(source, tmp_path / "out.jsonl", concurrency=8)
    storm_started = min(when for when, status, _ in replies.arrivals if status == 429)
    answered = [when for when, status, _ in replies.arrivals if status == 200]
    assert summary.complete and len(successes(tmp_path / "out.jsonl")) == 16
    assert summary.rate_limited == 8 and replies.statuses().count(429) == 8  # no storm on top of the storm
    assert min(answered) >= storm_started + 0.6  # nobody went before the server's Retry-After


def test_each_429_in_a_row_is_waited_out_one_request_at_a_time(fake, tmp_path, run):
    replies = BatchReplies(fake)
    replies.storm(3, retry_after="0.3")
    source = write_input(tmp_path / "in.jsonl", 3)
    summary = run(source, tmp_path / "out.jsonl", concurrency=1)
    times = [when for when, _, _ in replies.arrivals]
    assert replies.statuses() == [429, 429, 429, 200, 200, 200]
    assert all(later - earlier >= 0.3 for earlier, later in zip(times[:3], times[1:4]))
    assert summary.rate_limited == 3 and summary.failed == 0


def test_the_clients_own_retries_honour_retry_after_too(fake, tmp_path, make_config, run):
    replies = BatchReplies(fake)
    replies.storm(2, retry_after="0.3")
    source = write_input(tmp_path / "in.jsonl", 1)
    summary = run(source, tmp_path / "out.jsonl", config=make_config(provider_retries=2))
    times = [when for when, _, _ in replies.arrivals]
    assert replies.statuses() == [429, 429, 200] and times[2] - times[0] >= 0.6
    assert summary.succeeded == 1 and summary.rate_limited == 2  # absorbed inside the request, still counted


def test_a_429_the_client_waits_out_pauses_the_other_workers_too(fake, tmp_path, make_config, run):
    """The client's progress hook tells the run about a 429 inside a request at once: the
    other workers hold their next sends for the Retry-After instead of pressing on."""
    replies = BatchReplies(fake)
    replies.storm(1, retry_after="0.5")
    source = write_input(tmp_path / "in.jsonl", 40)
    summary = run(source, tmp_path / "out.jsonl", concurrency=4, config=make_config(provider_retries=2))
    refused = next(when for when, status, _ in replies.arrivals if status == 429)
    during = [when for when, status, _ in replies.arrivals if refused < when < refused + 0.45]
    assert summary.complete and summary.rate_limited == 1 and len(successes(tmp_path / "out.jsonl")) == 40
    # Without the pause the other 36 lines would all arrive in that window (the upstream
    # answers at once). With it, only sends already under way land there: 3 on a quiet
    # machine; a loaded one delays a few already-written requests, hence the margin.
    assert len(during) <= 8


def test_an_exhausted_quota_stops_the_run_and_a_rerun_finishes_it(fake, tmp_path, run):
    replies = BatchReplies(fake)
    source = write_input(tmp_path / "in.jsonl", 10)
    output = tmp_path / "out.jsonl"
    for _ in range(3):
        fake.completion("fine", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    fake.reply(status=429, json={"error": {"message": "You exceeded your current quota",
                                           "code": "insufficient_quota"}})
    with pytest.raises(BatchStoppedError) as caught:
        run(source, output, concurrency=1)
    stopped = caught.value
    assert "out of quota" in str(stopped) and "run the same command again to resume" in str(stopped)
    assert isinstance(stopped.cause, human.RateLimitError) and stopped.cause.quota_exhausted
    assert stopped.summary.pending == 7 and stopped.summary.succeeded == 3
    assert len(read_output(output)) == 3  # the refused request was not written as a failure
    summary = run(source, output)
    assert summary.complete and summary.sent == 7 and len(successes(output)) == 10
    assert len(replies.arrivals) == 7


def test_a_refused_key_stops_the_run_before_thousands_of_failure_lines(fake, tmp_path, run, replies):
    fake.reply(status=401, json={"error": {"message": "invalid api key"}}).as_default()
    source = write_input(tmp_path / "in.jsonl", 50)
    with pytest.raises(BatchStoppedError, match="API key was refused"):
        run(source, tmp_path / "out.jsonl", concurrency=2)
    assert read_output(tmp_path / "out.jsonl") == [] and len(fake.requests) <= 2


def test_a_provider_that_keeps_refusing_ends_the_run_resumably(fake, tmp_path, config):
    BatchReplies(fake).storm(50, retry_after="0")
    source = write_input(tmp_path / "in.jsonl", 5)

    async def main() -> None:
        async with AsyncClient(config=config) as client:
            await client.batch(source, tmp_path / "out.jsonl", concurrency=1, max_strikes=3)

    with pytest.raises(BatchStoppedError, match="refused 3 times in a row") as caught:
        asyncio.run(main())
    assert caught.value.summary.pending == 5 and read_output(tmp_path / "out.jsonl") == []


def test_rpm_spreads_the_requests_over_the_minute(fake, tmp_path, run):
    replies = BatchReplies(fake)
    source = write_input(tmp_path / "in.jsonl", 11)
    run(source, tmp_path / "out.jsonl", rpm=600, concurrency=8)
    times = sorted(when for when, _, _ in replies.arrivals)
    assert times[-1] - times[0] >= 0.95  # 11 requests at 10 a second: at least a second (never faster)


def test_tpm_reserves_and_settles_and_the_run_completes(fake, tmp_path, run):
    replies = BatchReplies(fake, delay=0.3)  # answers (and their refunds) come after the bucket runs dry
    source = write_input(tmp_path / "in.jsonl", 8, max_tokens=300)  # about 309 reserved per request
    summary = run(source, tmp_path / "out.jsonl", tpm=60_000, concurrency=8)  # 1,000 a second: 3 at once
    times = sorted(when for when, _, _ in replies.arrivals)
    assert summary.complete and len(times) == 8
    assert times[3] - times[0] >= 0.2  # the fourth waited for tokens to refill


def test_concurrency_bounds_the_requests_in_flight(fake, tmp_path, run):
    replies = BatchReplies(fake, delay=0.03)
    source = write_input(tmp_path / "in.jsonl", 30)
    run(source, tmp_path / "out.jsonl", concurrency=3)
    assert replies.peak == 3


# ---- secrets ----------------------------------------------------------------------------------


def test_a_key_the_server_echoes_back_never_reaches_the_output(fake, tmp_path, run, replies):
    fake.reply(status=400, json={"error": {"message": f"invalid request from key {CANARY}"}})
    source = write_input(tmp_path / "in.jsonl", 2)
    run(source, tmp_path / "out.jsonl", concurrency=1, errors=tmp_path / "errors.jsonl")
    for name in ("out.jsonl", "errors.jsonl"):
        assert CANARY not in (tmp_path / name).read_text()


def test_the_input_output_and_errors_files_must_be_three_files(tmp_path, run):
    source = write_input(tmp_path / "in.jsonl", 2)
    with pytest.raises(ValueError, match="the input and the output are the same file"):
        run(source, source)
    with pytest.raises(ValueError, match="the output and the errors file are the same file"):
        run(source, tmp_path / "out.jsonl", errors=tmp_path / "out.jsonl")
    assert len(source.read_text().splitlines()) == 2 and not (tmp_path / "out.jsonl").exists()


def test_a_client_made_with_log_on_logs_every_request_of_the_batch(fake, tmp_path, config, replies):
    from human.store import Query, open_store

    source = write_input(tmp_path / "in.jsonl", 4)
    human.batch(source, tmp_path / "out.jsonl", config=config, log=tmp_path / "log.db")
    # a reader of the log (another process here, in effect: a store of its own) imports
    # what the batch's client journaled; nothing is left only in the writer's memory
    store = open_store(tmp_path / "log.db")
    try:
        prompts = sorted(row.prompt for row in store.exchanges(Query(limit=100)))
    finally:
        store.close()
    assert prompts == [f"question {n}" for n in range(4)]
