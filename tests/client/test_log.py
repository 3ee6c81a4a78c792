"""Logging exchanges from the library (issue 12): off by default, on with one argument,
every field the issue lists, conversations found across processes, many writers at once,
and a log that fails without failing a request. Both clients, the fake server, real
SQLite files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import human
from human.store import Query, journal, open_store
from human.store.books import _books
from human.store.sqlite import SQLiteStore
from tests.client.conftest import CANARY

ROOT = Path(__file__).resolve().parents[2]
USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
         "prompt_tokens_details": {"cached_tokens": 100}}
PRICES = [{"model": "gpt-4o-2024-08-06", "input_mtok": "2.5", "cache_read_mtok": "1.25", "output_mtok": "10"}]


@pytest.fixture(autouse=True)
def fresh_logbooks():
    """Every test gets its own writers (one per database path, per process)."""
    yield
    for book in list(_books.values()):
        book.close()
    _books.clear()


def rows(path: Path) -> list[Any]:
    store = open_store(path)
    try:
        return list(reversed(store.exchanges(Query(limit=None))))  # oldest first
    finally:
        store.close()


# ---- on and off ---------------------------------------------------------------------------------


def test_library_clients_log_nothing_by_default(driver, fake, config_for, tmp_path, monkeypatch):
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path / "state"))
    fake.completion("hi")
    handle = driver.client(config_for())
    handle.chat("hello")
    handle.close()
    assert not (tmp_path / "state").exists()
    assert handle.client._log is None


def test_log_true_writes_to_the_state_dir(driver, fake, config_for, tmp_path, monkeypatch):
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path / "state"))
    fake.completion("hi")
    handle = driver.client(config_for(), log=True)
    handle.chat("hello")
    handle.close()
    assert [r.answer for r in rows(tmp_path / "state" / "logs.db")] == ["hi"]


def test_the_log_config_key_turns_it_on(driver, fake, config_for, tmp_path, monkeypatch):
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path))
    fake.completion("hi")
    handle = driver.client(config_for(log=True))
    handle.chat("hello")
    handle.close()
    assert len(rows(tmp_path / "logs.db")) == 1


def test_log_false_wins_over_the_config_key(driver, fake, config_for, tmp_path, monkeypatch):
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path))
    handle = driver.client(config_for(log=True), log=False)
    assert handle.client._log is None


# ---- what a row holds ---------------------------------------------------------------------------


def test_a_whole_answer_is_logged_with_everything_the_issue_lists(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.completion("Let me look.", model="gpt-4o-2024-08-06", usage=USAGE, finish_reason="tool_calls",
                    reasoning_content="they want weather",
                    tool_calls=[{"id": "c1", "type": "function",
                                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}])
    handle = driver.client(config_for(prices=PRICES), log=db)
    messages = [human.system("be brief"), human.user("weather in Paris?")]
    response = handle.chat(messages, temperature=0.2, max_tokens=50)
    handle.close()
    (row,) = rows(db)
    assert (row.provider, row.model_requested, row.model) == ("local", "test-model", "gpt-4o-2024-08-06")
    assert json.loads(row.messages) == messages and row.prompt == "weather in Paris?"
    assert json.loads(row.options) == {"max_tokens": 50, "temperature": 0.2}
    assert row.answer == "Let me look." and row.reasoning == "they want weather"
    assert json.loads(row.tool_calls) == [call.to_message() for call in response.tool_calls]
    assert row.finish_reason == "tool_calls" and not row.stream
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.total_tokens) == (120, 30, 100, 150)
    assert row.cost == str(response.cost.amount) == "0.000475"  # 20 uncached, 100 cached, 30 out
    assert row.cost_note == "config prices: gpt-4o-2024-08-06"
    assert row.attempts == 1 and row.total_ms > 0 and row.ttft_ms is None
    assert row.error_type is None and row.error is None and row.ok
    assert abs(row.started_ms / 1000 - time.time()) < 600


def test_a_stream_is_logged_with_its_time_to_first_event(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.stream_text("Hello there", model="gpt-4o-2024-08-06")
    handle = driver.client(config_for(), log=db)
    handle.stream("hi")
    handle.close()
    (row,) = rows(db)
    assert row.stream and row.answer == "Hello there"
    assert 0 < row.ttft_ms <= row.total_ms
    assert row.cost == "0" and "local server" in row.cost_note  # a loopback server is local


def test_retries_are_counted(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.reply(status=503, json={"error": {"message": "busy"}})
    fake.completion("ok")
    handle = driver.client(config_for(), log=db)
    assert handle.chat("hi").content == "ok"
    handle.close()
    (row,) = rows(db)
    assert row.attempts == 2 and row.ok


def test_a_failed_request_is_logged_with_its_error(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.reply(status=400, json={"error": {"message": "bad temperature", "type": "invalid_request_error"}})
    handle = driver.client(config_for(), log=db)
    with pytest.raises(human.BadRequestError):
        handle.chat("hi")
    handle.close()
    (row,) = rows(db)
    assert row.error_type == "BadRequestError" and "bad temperature" in row.error
    assert row.answer is None and row.cost is None and row.provider == "local"


def test_a_stream_cut_mid_way_is_logged_with_its_partial_answer(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    chunks = [{"id": "x", "object": "chat.completion.chunk", "model": "m",
               "choices": [{"index": 0, "delta": {"content": word}}]} for word in ("one ", "two ", "three")]
    fake.stream(chunks, drop_after=2, done=False)
    handle = driver.client(config_for(reliability={"provider_retries": 0}), log=db)
    with pytest.raises(human.APIError):
        handle.stream("count")
    handle.close()
    (row,) = rows(db)
    assert row.stream and row.error_type is not None and row.answer == "one two "


def test_a_config_error_is_not_an_exchange(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    handle = driver.client(config_for(), log=db)
    with pytest.raises(human.ConfigError):
        handle.chat("hi", provider="no-such-provider")
    handle.close()
    assert rows(db) == []


def test_the_callers_list_may_change_after_the_call(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.completion("a1")
    handle = driver.client(config_for(), log=db)
    messages = [human.user("q1")]
    handle.chat(messages)
    messages.append(human.user("changed later"))
    handle.close()
    assert json.loads(rows(db)[0].messages) == [human.user("q1")]


# ---- conversations ------------------------------------------------------------------------------


def test_a_continued_conversation_is_one_conversation_and_stores_only_what_is_new(driver, fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    handle = driver.client(config_for(), log=db)
    messages: list[dict[str, Any]] = [human.system("be brief"), human.user("q1")]
    for answer, question in (("a1", "q2"), ("a2", "q3")):
        fake.completion(answer)
        messages += [handle.chat(messages).to_message(), human.user(question)]
    fake.stream_text("a3")
    handle.stream(messages)
    fake.completion("other")
    handle.chat("unrelated")
    handle.close()
    first, second, third, other = rows(db)
    assert first.conversation_id == second.conversation_id == third.conversation_id != other.conversation_id
    assert (second.parent_id, third.parent_id, first.parent_id) == (first.id, second.id, None)
    assert json.loads(third.messages) == [human.user("q3")]
    store = open_store(db)
    assert store.history(first.conversation_id) == [*messages, human.assistant("a3")]
    store.close()


CONTINUE = """
import json, sys
import human
from human.store import open_store
db, url, question = sys.argv[1:4]
store = open_store(db)
conversation = store.latest_conversation()
history = store.history(conversation) if conversation else []
store.close()
with human.Client(base_url=url, model="m", api_key="k", log=db) as client:
    client.chat(history + [human.user(question)])
"""


def test_a_conversation_continues_across_three_processes(fake, tmp_path):
    db, config = tmp_path / "logs.db", tmp_path / "config.json"
    config.write_text("{}")
    for n in (1, 2, 3):
        fake.completion(f"answer {n}")
        done = subprocess.run([sys.executable, "-c", CONTINUE, str(db), fake.url_v1, f"question {n}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HU_CONFIG_PATH": str(config)})
        assert done.returncode == 0, done.stderr
    logged = rows(db)
    assert len(logged) == 3 and len({r.conversation_id for r in logged}) == 1
    store = open_store(db)
    assert [m["content"] for m in store.history(logged[0].conversation_id)] == [
        "question 1", "answer 1", "question 2", "answer 2", "question 3", "answer 3"]
    store.close()
    # the third request really carried the whole history
    assert [m["content"] for m in fake.last.json["messages"]] == [
        "question 1", "answer 1", "question 2", "answer 2", "question 3"]


# ---- many writers -------------------------------------------------------------------------------


def test_64_async_tasks_on_one_client_lose_no_row(fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.completion("hi", usage=USAGE).as_default()

    async def main() -> None:
        async with human.AsyncClient(config=config_for(), log=db) as client:
            await asyncio.gather(*(client.chat(f"q{n}") for n in range(64)))

    asyncio.run(main())
    logged = rows(db)
    assert sorted(r.prompt for r in logged) == sorted(f"q{n}" for n in range(64))


def test_8_threads_sharing_one_client_lose_no_row(fake, config_for, tmp_path):
    db = tmp_path / "logs.db"
    fake.completion("hi").as_default()
    client = human.Client(config=config_for(), log=db)

    def work(n: int) -> None:
        for i in range(25):
            client.chat(f"t{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert len({r.prompt for r in rows(db)}) == 200


# ---- a log that fails ---------------------------------------------------------------------------


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "human.store" and r.levelno >= logging.WARNING]


def test_a_locked_database_gives_one_warning_and_loses_nothing(driver, fake, config_for, tmp_path, caplog):
    db = tmp_path / "logs.db"
    store = SQLiteStore(db, busy_timeout_ms=50)
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    fake.completion("fine").as_default()
    handle = driver.client(config_for(), log=store)
    answers = [handle.chat(f"q{n}").content for n in range(3)]
    book = handle.client._log
    assert book.flush() is False and book.flush() is False  # still locked: kept, not lost
    assert answers == ["fine"] * 3
    warnings = store_warnings(caplog)
    assert len(warnings) == 1 and "could not write the log" in warnings[0] and "locked" in warnings[0]
    lock.execute("ROLLBACK")
    lock.close()
    assert book.flush() is True
    handle.close()
    assert len(rows(db)) == 3


def test_the_event_loop_never_waits_for_the_database(fake, config_for, tmp_path):
    """With the log locked and a writer waiting up to 30 s for it, 64 requests still
    finish (well inside a generous 20 s deadline): only the writer thread waits."""
    db = tmp_path / "logs.db"
    store = SQLiteStore(db, busy_timeout_ms=30_000)
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    fake.completion("fine").as_default()

    async def main() -> list[str]:
        client = human.AsyncClient(config=config_for(), log=store)
        try:
            client._log._interval = 0.01  # the writer tries (and waits on the lock) at once
            answers = await asyncio.wait_for(asyncio.gather(*(client.chat(f"q{n}") for n in range(64))), 20)
            assert client._log.written == 0  # the writer is still stuck behind the lock
        finally:  # closed however it ends: no socket left for a later test's garbage collection
            lock.execute("ROLLBACK")
            await client.close()
        return [a.content for a in answers]

    try:
        assert asyncio.run(main()) == ["fine"] * 64
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
    assert len(rows(db)) == 64


READ_ONLY = """
import json, logging, sys
import human
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("human.store").addHandler(Keep(level=logging.WARNING))
db, url = sys.argv[1:3]
with human.Client(base_url=url, model="m", api_key="k", log=db) as client:
    answers = [client.chat(f"q{n}").content for n in range(3)]
print(json.dumps({"answers": answers, "warnings": records}))
"""


def test_a_read_only_database_gives_one_warning_and_successful_requests(fake, tmp_path):
    """Root ignores file modes, so as root the check runs in a user namespace
    (`unshare --user`), where it does not."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "logs.db"
    open_store(db).close()
    for name in os.listdir(folder):
        os.chmod(folder / name, 0o444)
    os.chmod(folder, 0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("unshare"):
            pytest.skip("running as root without unshare(1): file modes cannot be made to bite")
        prefix = ["unshare", "--user"]
    (config := tmp_path / "config.json").write_text("{}")
    fake.completion("fine").as_default()
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", READ_ONLY, str(db), fake.url_v1], cwd=ROOT,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "HU_CONFIG_PATH": str(config)})
    finally:
        os.chmod(folder, 0o755)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answers"] == ["fine"] * 3
    assert len(result["warnings"]) == 1, result["warnings"]
    assert "could not write the log" in result["warnings"][0]


# ---- secrets ------------------------------------------------------------------------------------


def test_the_key_never_reaches_the_database_file(driver, fake, config_for, tmp_path):
    """The failure matrix: a 401 that echoes the key, a 500 that does, a stream that
    does and breaks, a body that is not JSON, and a prompt that contains the key."""
    db = tmp_path / "logs.db"
    echo = f"invalid key {CANARY}"
    handle = driver.client(config_for(reliability={"provider_retries": 0}), log=db)
    fake.reply(status=401, json={"error": {"message": echo}})
    fake.reply(status=500, json={"error": {"message": echo}})
    fake.reply(body=f"<html>{CANARY}</html>".encode(), content_type="text/html")
    fake.stream([{"choices": [{"index": 0, "delta": {"content": echo}}]}], drop_after=1, done=False)
    fake.completion(f"you said {CANARY}")
    for call in (handle.chat, handle.chat, handle.chat, handle.stream):
        with pytest.raises(human.HumanError):
            call("hi")
    handle.chat([human.user(f"is {CANARY} my key?")])
    assert handle.client._log.flush()
    (name,) = journal.journal_names(db)  # the journal, before anything imports it
    assert CANARY.encode() not in (tmp_path / name).read_bytes()
    handle.close()
    assert len(rows(db)) == 5
    for file in tmp_path.iterdir():
        if file.name.startswith("logs.db"):
            assert CANARY.encode() not in file.read_bytes(), file.name


def test_a_client_without_a_log_loads_neither_the_store_nor_the_price_data():
    code = (
        "import sys, os\n"
        "os.environ['HOME'] = '/nonexistent-home'\n"
        "import human\n"
        "c = human.Client(base_url='https://api.example.com/v1', model='m', api_key='k')\n"
        "c.dry_run('hi')\n"
        "heavy = ('sqlite3', 'human.store', 'human.pricing.snapshot', 'decimal')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_structured_call_logs_each_request_once_and_costs_their_sum(driver, fake, config_for, tmp_path):
    """A re-ask is an exchange of its own (logged, priced); the structured answer itself is
    not logged again, so `human usage` does not count its summed usage twice."""
    from decimal import Decimal

    db = tmp_path / "logs.db"
    fake.completion("Sure! Ann, I think.", model="gpt-4o-2024-08-06", usage=USAGE)
    fake.completion('{"name": "Ann"}', model="gpt-4o-2024-08-06", usage=USAGE)
    handle = driver.client(config_for(prices=PRICES), log=db)
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    answer = handle.chat("who?", response_format=schema)
    handle.close()
    assert answer.parsed == {"name": "Ann"}
    logged = rows(db)
    assert len(logged) == 2 == len(fake.requests)
    assert answer.usage.prompt_tokens == sum(r.prompt_tokens for r in logged) == 240
    assert answer.cost.amount == sum(Decimal(r.cost) for r in logged)


# ---- journals and retention ---------------------------------------------------------------------

LIVE = """
import sys
import human
db, url = sys.argv[1:3]
client = human.Client(base_url=url, model="m", api_key="k", log=db)
client.chat("asked by a process that goes on")
client._log.flush()
print("logged", flush=True)
sys.stdin.readline()  # alive until told
client.close()
"""


def test_a_reader_sees_what_a_live_process_logged_and_its_journal_goes_when_it_ends(fake, tmp_path):
    db, config = tmp_path / "logs.db", tmp_path / "config.json"
    config.write_text("{}")
    fake.completion("fine").as_default()
    proc = subprocess.Popen([sys.executable, "-c", LIVE, str(db), fake.url_v1], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HU_CONFIG_PATH": str(config)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "logged"
        assert [r.prompt for r in rows(db)] == ["asked by a process that goes on"]  # imported by this read
        assert len(journal.journal_names(db)) == 1  # its writer lives
        _, err = proc.communicate("\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert journal.journal_names(db) == [] and len(rows(db)) == 1


def test_log_retention_days_prunes_older_exchanges(driver, fake, config_for, tmp_path):
    from tests.unit.test_store import row

    db = tmp_path / "logs.db"
    old = row(started_ms=int(time.time() * 1000) - 40 * 86_400_000, prompt="forty days ago")
    store = open_store(db)
    store.append([old])
    store.close()
    fake.completion("fresh")
    handle = driver.client(config_for(log_retention_days=30), log=db)
    handle.chat("today")
    handle.close()
    handle.client._log.close()  # as at exit: imports its journal, and prunes
    with sqlite3.connect(db) as con:
        assert [p for (p,) in con.execute("SELECT prompt FROM exchanges")] == ["today"]


def test_log_retention_days_must_be_positive(config_for):
    with pytest.raises(human.ConfigError, match="log_retention_days"):
        config_for(log_retention_days=0)


def test_a_first_price_lookup_is_left_to_the_writer_thread(fake, config_for, tmp_path):
    """Capturing on a caller's thread (an event loop) never reads price data: the first
    answer of a provider and model is priced on the log's thread, later ones anywhere."""
    from human.store.record import cheap

    fake.completion("hi", model="gpt-4o-2024-08-06", usage=USAGE).as_default()
    items: list[Any] = []
    priced = human.Client(config=config_for(prices=PRICES), log=tmp_path / "a.db")
    priced._log.add = items.append  # type: ignore[method-assign]
    priced.chat("first")
    assert not cheap(items[0])
    assert items[0][7].cost is not None  # what the writer does with it
    priced.chat("second")
    assert cheap(items[1])
    local = human.Client(config=config_for(), log=tmp_path / "b.db")  # a local server, no prices: free, at once
    local._log.add = items.append  # type: ignore[method-assign]
    local.chat("third")
    assert cheap(items[2])
    priced.close()
    local.close()
