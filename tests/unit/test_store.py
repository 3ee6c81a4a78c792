"""The SQLite log store (issue 12): migrations, rows, search, deletion, sums, and several
writers at once. Real SQLite files in tmp_path; nothing is mocked."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from human.store import Exchange, Query, default_path, open_store
from human.store.migrations import MIGRATIONS, migrate
from human.store.record import new_id
from human.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


def row(**fields) -> Exchange:
    """A realistic row; content fields only when given."""
    exchange_id = fields.pop("id", None) or new_id(fields.get("started_ms", 1_796_000_000_000))
    values = dict(
        id=exchange_id, conversation_id=exchange_id, parent_id=None, started_ms=1_796_000_000_000,
        provider="openrouter", model_requested="anthropic/claude-sonnet-4.5", model="anthropic/claude-sonnet-4.5",
        prompt_tokens=1234, completion_tokens=567, cached_tokens=1000, reasoning_tokens=120, total_tokens=1801,
        cost="0.0123456789",
        cost_note="genai-prices 0.2.3, snapshot 2026-12-04: openrouter/anthropic/claude-sonnet-4.5",
        attempts=1, ttft_ms=123.456, total_ms=2345.678, finish_reason="stop", thread_hash=bytes(range(8)),
    )
    values.update(fields)
    return Exchange(**values)


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())


# ---- migrations ---------------------------------------------------------------------------------


def build_with_first(path: Path, count: int) -> None:
    """A database as a release that shipped only the first `count` migrations made it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for step in MIGRATIONS[:count]:
        step(db)
        db.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00+00:00')", (step.__name__,))
    db.execute(f"PRAGMA user_version = {count}")
    if count:  # a row written by that release
        db.execute("INSERT INTO exchanges (id, conversation_id, started_ms, prompt, answer) "
                   "VALUES ('01OLD', '01OLD', 1, 'the old question about otters', 'otters hold hands')")
    db.close()


@pytest.mark.parametrize("count", range(len(MIGRATIONS)))
def test_a_database_made_by_every_earlier_release_upgrades_to_the_current_schema(tmp_path, count):
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    build_with_first(old, count)
    open_store(old).close()
    open_store(fresh).close()
    assert schema(old) == schema(fresh)
    with sqlite3.connect(old) as db:
        applied = [name for (name,) in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
        assert applied == [step.__name__ for step in MIGRATIONS]
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    store = open_store(old)
    if count:  # the old row survived and is searchable, even if it predates the index
        assert [e.id for e in store.exchanges(Query(text="otters"))] == ["01OLD"]
    store.close()


def test_migrating_twice_changes_nothing(tmp_path):
    path = tmp_path / "logs.db"
    open_store(path).close()
    before = schema(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA user_version = 0")  # force the slow path: every migration is checked by name
    migrate(db)
    db.close()
    assert schema(path) == before


def test_the_file_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "dir" / "logs.db"
    open_store(path).close()
    assert path.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_default_path_is_in_home_and_hu_state_dir_moves_it(tmp_path):
    assert default_path({"HOME": "/home/ann"}) == Path("/home/ann/.human/logs.db")
    assert default_path({"HOME": "/home/ann", "HU_STATE_DIR": str(tmp_path)}) == tmp_path / "logs.db"


# ---- rows ---------------------------------------------------------------------------------------


def test_a_row_without_message_content_takes_at_most_512_bytes(tmp_path):
    """Measured on the file, indexes and the full-text index included."""
    path = tmp_path / "logs.db"
    store = open_store(path)
    store.append([row(started_ms=1_796_000_000_000 + i) for i in range(200)])  # settle the first pages
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    before = path.stat().st_size
    count = 4000
    for start in range(0, count, 500):
        store.append([row(started_ms=1_796_000_000_000 + i) for i in range(start, start + 500)])
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per_row = (path.stat().st_size - before) / count
    assert per_row <= 512, per_row


def test_rows_come_back_as_written_newest_first(tmp_path):
    store = open_store(tmp_path / "logs.db")
    first = row(started_ms=1000, prompt="one", messages='[{"role":"user","content":"one"}]', answer="uno",
                options='{"temperature":0.2}', stream=True)
    second = row(started_ms=2000, prompt="two", answer="dos")
    store.append([first, second])
    assert store.exchanges(Query()) == [second, first]
    assert store.get(first.id) == first
    assert store.get(first.id[:20]) in (first, None)  # a prefix: found when only one id has it
    assert first.to_dict()["options"] == {"temperature": 0.2} and first.to_dict()["stream"] is True
    assert "thread_hash" not in first.to_dict()


def test_filters_by_model_provider_time_and_limit(tmp_path):
    store = open_store(tmp_path / "logs.db")
    a = row(started_ms=1000, provider="groq", model_requested="llama", model="llama-3.3-70b-versatile")
    b = row(started_ms=2000, provider="openai", model_requested="gpt-4o", model="gpt-4o-2024-08-06")
    c = row(started_ms=3000, provider="openai", model_requested="fast", model="gpt-4o-mini-2024-07-18")
    store.append([a, b, c])
    assert store.exchanges(Query(provider="openai")) == [c, b]
    assert store.exchanges(Query(model="gpt-4o")) == [b]  # asked for by that name (not gpt-4o-mini)
    assert store.exchanges(Query(model="gpt-4o-mini-2024-07-18")) == [c]  # the name that served
    assert store.exchanges(Query(model="fast")) == [c]
    assert store.exchanges(Query(since_ms=1500)) == [c, b]
    assert store.exchanges(Query(limit=1)) == [c]


def test_full_text_search_over_prompts_and_answers(tmp_path):
    store = open_store(tmp_path / "logs.db")
    a = row(started_ms=1, prompt="How do otters sleep?", answer="Holding hands, floating.")
    b = row(started_ms=2, prompt="Capital of France?", answer="Paris.")
    c = row(started_ms=3, prompt="Tell me about sea otters", answer="They use tools.")
    store.append([a, b, c])
    assert store.exchanges(Query(text="otters")) == [c, a]
    assert store.exchanges(Query(text="paris")) == [b]  # answers too, any case
    assert store.exchanges(Query(text="otters tools")) == [c]  # every word
    assert store.exchanges(Query(text='"AND OR NOT (')) == []  # FTS syntax is taken literally


def test_deleting_one_exchange_and_everything(tmp_path):
    store = open_store(tmp_path / "logs.db")
    a, b = row(started_ms=1, prompt="keep otters"), row(started_ms=2, prompt="drop otters")
    store.append([a, b])
    assert store.delete(b.id) == 1
    assert store.delete("no-such-id") == 0
    assert store.exchanges(Query()) == [a]
    assert store.exchanges(Query(text="otters")) == [a]  # gone from the index too
    assert store.delete_all() == 1
    assert store.exchanges(Query()) == [] and store.exchanges(Query(text="otters")) == []
    assert store.latest_conversation() is None


def test_history_follows_the_chain_to_the_latest_answer(tmp_path):
    store = open_store(tmp_path / "logs.db")
    first = row(started_ms=1, messages='[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]',
                answer="hello")
    second = row(started_ms=2, conversation_id=first.id, parent_id=first.id,
                 messages='[{"role":"user","content":"weather?"}]', answer=None,
                 tool_calls='[{"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]')
    failed = row(started_ms=3, conversation_id=first.id, parent_id=second.id,
                 messages='[{"role":"tool","tool_call_id":"c1","content":"sunny"}]', error_type="ServerError",
                 error="500")
    store.append([first, second, failed])
    assert store.latest_conversation() == first.id
    assert store.history(first.id) == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
    ]
    assert store.history("unknown") == []


def test_usage_totals_equal_the_sums_of_the_rows_exactly(tmp_path):
    store = open_store(tmp_path / "logs.db")
    day = 86_400_000
    rows = [
        row(started_ms=day * 20000, provider="openai", model="gpt-4o", cost="0.1", prompt_tokens=10),
        row(started_ms=day * 20000 + 5, provider="openai", model="gpt-4o", cost="0.2", prompt_tokens=20),
        row(started_ms=day * 20001, provider="groq", model="llama", cost=None, cost_note="unknown", prompt_tokens=5),
        row(started_ms=day * 20001, provider="groq", model="llama", cost=None, error_type="ServerError",
            prompt_tokens=None, completion_tokens=None, cached_tokens=None, reasoning_tokens=None),
    ]
    store.append(rows)
    by_all = store.usage(None, ["day", "provider", "model"])
    assert [(u.day, u.provider, u.model, u.exchanges, u.errors, u.prompt_tokens, u.cost, u.unpriced)
            for u in by_all] == [
        ("2024-10-04", "openai", "gpt-4o", 2, 0, 30, Decimal("0.3"), 0),  # 0.1 + 0.2, exactly
        ("2024-10-05", "groq", "llama", 2, 1, 5, Decimal(0), 1),
    ]
    (total,) = store.usage(None, [])
    assert total.exchanges == 4 and total.cost == Decimal("0.3") and total.prompt_tokens == 35
    assert sum((u.cost for u in by_all), Decimal(0)) == total.cost
    assert [u.provider for u in store.usage(day * 20001, ["provider"])] == ["groq"]
    with pytest.raises(ValueError, match="day, provider or model"):
        store.usage(None, ["colour"])


# ---- several writers ----------------------------------------------------------------------------

WRITER = """
import sys
from human.store import open_store
from human.store.record import new_id
from tests.unit.test_store import row
store = open_store(sys.argv[1])
for i in range(int(sys.argv[2])):
    store.append([row(id=new_id(), started_ms=1_796_000_000_000 + i, prompt=f"p{sys.argv[3]}-{i}")])
store.close()
"""


def test_eight_processes_writing_500_rows_each_lose_nothing_and_never_see_locked(tmp_path):
    """One transaction per row (the hardest case), on a file none of them found made."""
    path = tmp_path / "logs.db"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), "500", str(n)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(8)]
    results = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert "locked" not in err
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id), count(DISTINCT prompt) FROM exchanges"
                          ).fetchone() == (4000, 4000, 4000)


def test_eight_threads_with_their_own_connections_lose_nothing(tmp_path):
    path = tmp_path / "logs.db"
    open_store(path).close()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        store = SQLiteStore(path)
        try:
            for i in range(500):
                store.append([row(started_ms=i, prompt=f"t{n}-{i}")])
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(DISTINCT prompt) FROM exchanges").fetchone() == (4000,)


def test_ids_sort_by_time_and_do_not_collide():
    ids = [new_id(1_796_000_000_000 + i // 10) for i in range(10_000)]
    assert len(set(ids)) == 10_000 and all(len(i) == 26 for i in ids)
    assert ids == sorted(ids)  # within a millisecond too: in the order they were made


def test_ids_made_in_one_millisecond_by_threads_and_a_forked_child_never_collide():
    import os
    import threading

    ms = 1_796_000_000_123
    made: list[str] = []

    def make() -> None:
        made.extend(new_id(ms) for _ in range(2_000))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8_000
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # continues in the same millisecond as its parent
        os.write(write, ",".join(new_id(ms) for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split(",")
    ours = [new_id(ms) for _ in range(100)]
    assert len(theirs) == 100 and not set(theirs) & set(ours) and not set(theirs) & set(made)


def test_stored_json_is_valid(tmp_path):
    e = row(messages=json.dumps([{"role": "user", "content": "é"}], ensure_ascii=False))
    store = open_store(tmp_path / "logs.db")
    store.append([e])
    assert store.get(e.id).to_dict()["messages"] == [{"role": "user", "content": "é"}]


def test_batches_of_any_size_are_inserted_by_a_few_statement_shapes(tmp_path):
    """The connection caches each statement it prepares, and a multi-row INSERT is large:
    one statement per batch size once held ~25 MB in a busy gateway (its writer imports
    slices of 1 to 120 rows). Any batch size is made of a few fixed chunk sizes."""
    store = SQLiteStore(tmp_path / "logs.db")
    inserts: set[str] = set()
    store._db.set_trace_callback(lambda sql: inserts.add(sql.split(" VALUES")[0] + f" x{sql.count('),(') + 1}")
                                 if sql.startswith("INSERT") else None)
    made = 0
    for size in [*range(1, 300), 1000, 2345]:
        store.append([row(started_ms=1_796_000_000_000 + made + i, answer=f"a{made + i}") for i in range(size)])
        made += size
    store._db.set_trace_callback(None)
    exchanges = {shape for shape in inserts if "INTO exchanges" in shape}
    assert 1 < len(exchanges) <= 5, sorted(exchanges)
    assert len(store.exchanges(Query(limit=None))) == made  # and every row is there, once
    store.close()
