"""`human chat` logging, `-c` / `--cid`, `human logs` and `human usage` (issue 12), end to
end: a real subprocess against the fake server, the log in the test's own HOME."""

from __future__ import annotations

import json
import os
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tests.cli.terminal import Terminal
from tests.cli.test_cli import CANARY, chunk, human

PRICES = [{"model": "gpt-4o-mini-2024-07-18", "input_mtok": "0.15", "cache_read_mtok": "0.075",
           "output_mtok": "0.6"}]


def usage(prompt: int, completion: int, cached: int = 0) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "gpt-4o-mini",
                                "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
                                "reliability": {"provider_retries": 0}, "prices": PRICES}))
    os.chmod(file, 0o600)
    return file


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    """HU_STATE_DIR for the subprocesses: the log lands in tmp_path/state/logs.db."""
    return {"HU_STATE_DIR": str(tmp_path / "state")}


def run(cfg: Path, state: dict[str, str], *args: str, stdin: str | None = None):
    return human(*args, "--config", str(cfg), env=state, stdin=stdin)


def logged(state: dict[str, str]) -> list[dict]:
    with sqlite3.connect(Path(state["HU_STATE_DIR"]) / "logs.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM exchanges ORDER BY seq")]


def chat(fake, cfg, state, prompt: str, answer: str, *flags: str, tokens=(10, 5, 0), model="gpt-4o-mini-2024-07-18"):
    fake.completion(answer, model=model, usage=usage(*tokens))
    result = run(cfg, state, "chat", "--no-stream", *flags, prompt)
    assert result.returncode == 0, result.stderr
    return result


# ---- logging ------------------------------------------------------------------------------------


def test_every_chat_is_logged_unless_no_log_or_logs_off(fake, cfg, state):
    chat(fake, cfg, state, "one", "uno")
    chat(fake, cfg, state, "two", "dos", "--no-log")
    assert run(cfg, state, "logs", "off").returncode == 0
    chat(fake, cfg, state, "three", "tres")
    assert run(cfg, state, "logs", "on").returncode == 0
    fake.stream([chunk("cuatro")])
    assert run(cfg, state, "chat", "four").returncode == 0
    rows = logged(state)
    assert [(r["prompt"], r["answer"], r["stream"]) for r in rows] == [("one", "uno", 0), ("four", "cuatro", 1)]
    log_file = Path(state["HU_STATE_DIR"]) / "logs.db"
    assert CANARY.encode() not in log_file.read_bytes()
    assert run(cfg, state, "logs", "path").stdout.strip() == str(log_file)


# What `human chat --dry-run` must not import: each was once loaded at its start-up for
# nothing (the benchmark's budget: its wall time ≤ 1.5 × `python -c "import httpx"`). The
# log's store and writer (a dry run logs nothing), the async client and the asyncio stack
# (`human chat` is sync), the gateway and the other commands' modules, socket and ssl
# (nothing is sent), importlib.resources (the package's data files are read directly).
NOT_FOR_A_DRY_RUN = (
    "human.store", "human.store.writer", "human.cli.logs", "human.client.aio", "human.transport.aio",
    "human.gateway", "human.cli.gateway", "human.cli.batch", "human.batching", "human.agent", "human.structured",
    "asyncio", "aiohttp", "socket", "ssl", "importlib.resources",
)


def test_a_dry_run_logs_nothing_and_loads_only_what_it_needs(fake, cfg, state):
    """A dry run sends nothing, so there is nothing to log, and start-up loads none of
    NOT_FOR_A_DRY_RUN (checked on the modules, not on a clock)."""
    import subprocess
    import sys

    code = ("import sys; from human.cli import main; code = main(sys.argv[1:]); "
            f"print('loaded:', [name for name in {NOT_FOR_A_DRY_RUN!r} if name in sys.modules], file=sys.stderr); "
            "sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, "chat", "--dry-run", "--config", str(cfg), "hello"],
                            capture_output=True, text=True, env={**os.environ, **state}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"hello"' in result.stdout
    assert "loaded: []" in result.stderr, result.stderr
    state_dir = Path(state["HU_STATE_DIR"])
    assert not state_dir.exists() or not any(state_dir.glob("logs.db*")), list(state_dir.iterdir())
    assert fake.requests == []


def test_a_failed_chat_is_logged_with_its_error(fake, cfg, state):
    fake.reply(status=401, json={"error": {"message": f"bad key {CANARY}"}})
    result = run(cfg, state, "chat", "--no-stream", "hi")
    assert result.returncode == 1
    (row,) = logged(state)
    assert row["error_type"] == "AuthenticationError" and CANARY not in row["error"]


# ---- continuing ---------------------------------------------------------------------------------


def test_continue_sends_the_latest_conversation_and_joins_it(fake, cfg, state):
    chat(fake, cfg, state, "Why do otters hold hands?", "So they do not drift apart.", "--system", "be brief")
    chat(fake, cfg, state, "Unrelated question", "Unrelated answer")
    result = chat(fake, cfg, state, "And then?", "They sleep.", "-c")
    assert fake.last.json["messages"] == [
        {"role": "user", "content": "Unrelated question"}, {"role": "assistant", "content": "Unrelated answer"},
        {"role": "user", "content": "And then?"}]
    assert "continuing conversation" in result.stderr
    first, second, third = logged(state)
    assert third["conversation_id"] == second["conversation_id"] != first["conversation_id"]
    # --cid takes any id of the conversation: go back to the first one
    chat(fake, cfg, state, "How long do they sleep?", "Hours.", "--cid", first["id"])
    assert [m["content"] for m in fake.last.json["messages"]] == [
        "be brief", "Why do otters hold hands?", "So they do not drift apart.", "How long do they sleep?"]
    assert logged(state)[-1]["conversation_id"] == first["conversation_id"]


def test_continue_with_nothing_logged_says_so(fake, cfg, state):
    result = run(cfg, state, "chat", "-c", "hi")
    assert result.returncode == 2 and "nothing to continue" in result.stderr
    chat(fake, cfg, state, "one", "uno")
    result = run(cfg, state, "chat", "--cid", "NOSUCHID", "hi")
    assert result.returncode == 2 and "no conversation 'NOSUCHID'" in result.stderr
    assert len(fake.requests) == 1


def test_the_interactive_chat_resumes_a_conversation_with_its_history(fake, cfg, state):
    chat(fake, cfg, state, "Why do otters hold hands?", "So they do not drift apart.")
    fake.stream([chunk("Mostly at sea.")])
    term = Terminal("chat", "--config", str(cfg), "-c", env=state)
    term.expect("continuing conversation")
    term.expect("you> ")
    term.send("Where do they sleep?\n")
    term.expect("Mostly at sea.")
    term.expect("you> ")
    term.send("/exit\n")
    assert term.finish() == 0
    assert [m["content"] for m in fake.last.json["messages"]] == [
        "Why do otters hold hands?", "So they do not drift apart.", "Where do they sleep?"]
    rows = logged(state)
    assert len(rows) == 2 and rows[1]["conversation_id"] == rows[0]["conversation_id"]


# ---- human logs ---------------------------------------------------------------------------------


def test_logs_lists_filters_and_searches(fake, cfg, state):
    chat(fake, cfg, state, "Why do otters hold hands?", "So they do not drift apart.")
    chat(fake, cfg, state, "How dense is otter fur?", "The densest of any animal.", "-m", "fast")
    chat(fake, cfg, state, "Capital of France?", "Paris.", "-m", "llama3", model="llama3")
    listed = run(cfg, state, "logs")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "time", "model", "tokens", "cost", "prompt"]
    assert "Capital of France?" in lines[-1] and "$0.00" in lines[-1]  # oldest first, newest last
    assert "$0.0000045" in lines[2]  # 10 in at 0.15, 5 out at 0.6, per million
    rows = json.loads(run(cfg, state, "logs", "--json", "-q", "otters").stdout)
    assert [r["prompt"] for r in rows] == ["Why do otters hold hands?"]  # "otters" is a word of one prompt
    rows = json.loads(run(cfg, state, "logs", "--json", "-q", "otter").stdout)
    assert [r["prompt"] for r in rows] == ["How dense is otter fur?"]
    assert [r["model_requested"] for r in json.loads(run(cfg, state, "logs", "--json", "-m", "fast").stdout)] == [
        "fast"]
    assert len(json.loads(run(cfg, state, "logs", "--json", "-n", "2").stdout)) == 2
    assert len(json.loads(run(cfg, state, "logs", "--json", "--since", "1h").stdout)) == 3
    assert json.loads(run(cfg, state, "logs", "--json", "--since", "2999-01-01").stdout) == []
    assert json.loads(run(cfg, state, "logs", "--json", "-p", "other").stdout) == []
    bad = run(cfg, state, "logs", "--since", "last tuesday")
    assert bad.returncode == 2 and "30m, 12h, 7d" in bad.stderr


def test_logs_show_and_delete(fake, cfg, state):
    chat(fake, cfg, state, "Why do otters hold hands?", "So they do not drift apart.", tokens=(40, 5, 32))
    chat(fake, cfg, state, "second", "answer")
    first, second = logged(state)
    shown = run(cfg, state, "logs", "show", first["id"][:24])
    assert shown.returncode == 0
    assert f"id:           {first['id']}" in shown.stdout
    assert "usage:        prompt 40, completion 5, cached 32" in shown.stdout
    # 8 uncached at 0.15, 32 cached at 0.075, 5 out at 0.6 per million
    assert "cost:         $0.0000066 (config prices: gpt-4o-mini-2024-07-18)" in shown.stdout
    assert "--- user ---\nWhy do otters hold hands?" in shown.stdout
    assert "--- assistant ---\nSo they do not drift apart." in shown.stdout
    assert json.loads(run(cfg, state, "logs", "show", first["id"], "--json").stdout)["answer"] == (
        "So they do not drift apart.")
    assert run(cfg, state, "logs", "show", "NOSUCH").returncode == 2
    assert run(cfg, state, "logs", "delete", first["id"]).returncode == 0
    assert [r["id"] for r in logged(state)] == [second["id"]]
    assert run(cfg, state, "logs", "delete", "NOSUCH").returncode == 2
    result = run(cfg, state, "logs", "delete", "--all")
    assert result.returncode == 0 and "deleted 1 exchange" in result.stderr
    assert logged(state) == []


# ---- human usage --------------------------------------------------------------------------------


def test_usage_totals_equal_the_rows_and_the_log(fake, cfg, state):
    chat(fake, cfg, state, "a", "1", tokens=(1000, 200, 800))
    chat(fake, cfg, state, "b", "2", tokens=(333, 77, 0))
    chat(fake, cfg, state, "c", "3", "-m", "llama3", tokens=(50, 50, 0), model="llama3")
    fake.completion("no usage", model="gpt-4o-mini-2024-07-18")
    assert run(cfg, state, "chat", "--no-stream", "d").returncode == 0
    report = json.loads(run(cfg, state, "usage", "--json").stdout)
    rows, total = report["rows"], report["total"]
    assert {(r["model"], r["exchanges"]) for r in rows} == {("gpt-4o-mini-2024-07-18", 3), ("llama3", 1)}
    for key in ("exchanges", "prompt_tokens", "completion_tokens", "cached_tokens", "unpriced"):
        assert total[key] == sum(r[key] for r in rows)
    assert Decimal(total["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in rows)
    log = logged(state)
    assert Decimal(total["cost_usd"]) == sum(Decimal(r["cost"]) for r in log if r["cost"] is not None)
    assert total["prompt_tokens"] == sum(r["prompt_tokens"] or 0 for r in log) == 1383
    assert total["unpriced"] == 1  # the answer without usage: counted, never a guessed 0
    by_provider = json.loads(run(cfg, state, "usage", "--json", "--by", "provider").stdout)
    assert by_provider["rows"] == [{**total, "provider": "local"}]
    text = run(cfg, state, "usage").stdout.splitlines()
    assert text[0].split()[:3] == ["day", "provider", "model"] and text[-1].startswith("total")
    assert "(+1 unpriced)" in text[-1]
    assert json.loads(run(cfg, state, "usage", "--json", "--since", "2999-01-01").stdout)["rows"] == []
    assert run(cfg, state, "usage", "--by", "colour").returncode == 2


def test_usage_and_logs_before_any_log_exist(cfg, state):
    assert run(cfg, state, "usage").returncode == 0
    result = run(cfg, state, "logs")
    assert result.returncode == 0 and "no log yet" in result.stderr


def test_log_retention_days_in_the_config_prunes_what_is_older(fake, cfg, state):
    import time

    from human.store import open_store
    from tests.unit.test_store import row

    chat(fake, cfg, state, "recent", "kept")
    store = open_store(Path(state["HU_STATE_DIR"]) / "logs.db")
    store.append([row(started_ms=int(time.time() * 1000) - 10 * 86_400_000, prompt="ten days old")])
    store.close()
    data = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**data, "log_retention_days": 7}))
    listed = json.loads(run(cfg, state, "logs", "--json").stdout)
    assert [r["prompt"] for r in listed] == ["recent"]
    assert [r["prompt"] for r in logged(state)] == ["recent"]
