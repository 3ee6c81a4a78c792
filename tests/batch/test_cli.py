"""`human batch` end to end: a real subprocess against the fake server, so exit codes, what
reaches a terminal (through a pseudo-terminal) and what survives SIGKILL are exactly what
a user gets."""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.conftest import CANARY, read_output, write_input
from tests.fakes.batch_replies import BatchReplies


def human(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "human", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def start(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "human", *args], **kw)


def batch_args(source: Path, output: Path, config: Path, *more: str) -> list[str]:
    return ["batch", str(source), "-o", str(output), "--config", str(config), *more]


def test_a_complete_run_exits_0_and_prints_only_the_summary_off_a_terminal(tmp_path, config, replies):
    source = write_input(tmp_path / "in.jsonl", 20)
    result = human(*batch_args(source, tmp_path / "out.jsonl", config))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("human batch: 20 of 20 lines succeeded\n")
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # no progress line into a file or pipe
    assert "this run: 20 sent" in result.stderr and "; $0.00" in result.stderr  # priced: see conftest PRICES


def test_json_puts_the_summary_on_stdout_and_nothing_on_stderr(tmp_path, config, replies):
    source = write_input(tmp_path / "in.jsonl", 5)
    result = human(*batch_args(source, tmp_path / "out.jsonl", config, "--json"))
    summary = json.loads(result.stdout)
    assert result.returncode == 0 and result.stderr == ""
    assert (summary["lines"], summary["succeeded"], summary["complete"]) == (5, 5, True)
    assert summary["output_prompt_tokens"] == sum(line["human"]["prompt_tokens"]
                                                  for line in read_output(tmp_path / "out.jsonl"))


def test_failed_lines_exit_1_and_the_summary_points_at_them(fake, tmp_path, config, replies):
    fake.reply(status=400, json={"error": {"message": "bad request"}})
    source = write_input(tmp_path / "in.jsonl", 4)
    result = human(*batch_args(source, tmp_path / "out.jsonl", config, "--concurrency", "1"))
    assert result.returncode == 1
    assert "3 of 4 lines succeeded, 1 failed" in result.stderr and "--retry-failed" in result.stderr


def test_an_invalid_file_exits_2_with_line_numbers_and_sends_nothing(fake, tmp_path, config, replies):
    source = write_input(tmp_path / "in.jsonl", 3)
    with open(source, "a") as file:
        file.write('{"custom_id": "q0", "messages": [{"role": "user", "content": "x"}]}\n')
    result = human(*batch_args(source, tmp_path / "out.jsonl", config))
    assert result.returncode == 2
    assert "line 4 repeats custom_id 'q0' (first on line 1)" in result.stderr and "Traceback" not in result.stderr
    assert fake.requests == []


def test_dry_run_prints_count_models_and_token_estimate(fake, tmp_path, config, replies):
    source = write_input(tmp_path / "in.jsonl", 10, max_tokens=64)
    result = human(*batch_args(source, tmp_path / "out.jsonl", config, "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "10 lines: 10 to send, 0 already done, 0 invalid",
        "  test-model (local): 10 requests, ~90 input tokens, output up to 640 tokens",
        "  estimated cost: $0.00009 for the input + up to $0.00128 for the output",
    ]
    assert fake.requests == [] and not (tmp_path / "out.jsonl").exists()


def test_a_quota_stop_exits_1_says_how_to_resume_and_the_rerun_finishes(fake, tmp_path, config, replies):
    fake.reply(status=429, json={"error": {"message": "You exceeded your current quota",
                                           "code": "insufficient_quota"}})
    source = write_input(tmp_path / "in.jsonl", 6)
    output = tmp_path / "out.jsonl"
    stopped = human(*batch_args(source, output, config, "--concurrency", "1"))
    assert stopped.returncode == 1
    assert "out of quota" in stopped.stderr and "run the same command again to resume" in stopped.stderr
    assert "6 still to do" in stopped.stderr and read_output(output) == []
    finished = human(*batch_args(source, output, config))
    assert finished.returncode == 0 and len(read_output(output)) == 6


def test_no_key_reaches_the_terminal_or_the_files(fake, tmp_path, config, replies):
    fake.reply(status=400, json={"error": {"message": f"bad key {CANARY}"}})
    source = write_input(tmp_path / "in.jsonl", 2)
    result = human(*batch_args(source, tmp_path / "out.jsonl", config, "--concurrency", "1",
                               "--errors", str(tmp_path / "errors.jsonl"), "--debug"))
    assert result.returncode == 1
    for text in (result.stdout, result.stderr, (tmp_path / "out.jsonl").read_text(),
                 (tmp_path / "errors.jsonl").read_text()):
        assert CANARY not in text


def test_each_request_goes_into_the_exchange_log_unless_no_log(tmp_path, config, replies):
    import sqlite3
    from decimal import Decimal

    state = {"HU_STATE_DIR": str(tmp_path / "state")}
    source = write_input(tmp_path / "in.jsonl", 5)
    assert human(*batch_args(source, tmp_path / "out.jsonl", config), env=state).returncode == 0
    more = write_input(tmp_path / "more.jsonl", 3, start=100)
    assert human(*batch_args(more, tmp_path / "more.out", config, "--no-log"), env=state).returncode == 0
    database = tmp_path / "state" / "logs.db"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT prompt, cost FROM exchanges").fetchall()
    assert sorted(prompt for prompt, _ in rows) == [f"question {n}" for n in range(5)]
    costs = {line["custom_id"]: line["human"]["cost"] for line in read_output(tmp_path / "out.jsonl")}
    assert sum(Decimal(cost) for _, cost in rows) == pytest.approx(Decimal(str(sum(costs.values()))))
    assert CANARY.encode() not in database.read_bytes()


def test_the_progress_line_is_redrawn_in_place_on_a_terminal_at_most_4_times_a_second(fake, tmp_path, config):
    import pty

    BatchReplies(fake, delay=0.1)
    source = write_input(tmp_path / "in.jsonl", 48)
    leader, follower = pty.openpty()
    began = time.monotonic()
    process = start(*batch_args(source, tmp_path / "out.jsonl", config, "--concurrency", "4"),
                    stdout=subprocess.PIPE, stderr=follower, env={**os.environ, "COLUMNS": "200"})
    os.close(follower)
    seen = b""
    try:
        while True:
            if select.select([leader], [], [], 0.1)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        stdout, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        os.close(leader)
        if process.stdout is not None:
            process.stdout.close()
    elapsed = time.monotonic() - began
    text = re.sub(r"\x1b\[[0-9;]*m", "", seen.decode(errors="replace"))  # the status line is dimmed
    draws = re.findall(r"\r\x1b\[2K([^\r]+)", text)
    progress = [draw for draw in draws if " done  " in draw]
    assert process.returncode == 0, text
    assert stdout == b"" and progress, text
    for line in progress:
        assert re.fullmatch(r"\d+/48 done  [\d.]+ req/s  \S+ tokens  \$0\.\d+  ETA (\?|\d+:\d\d)", line), line
    assert len(progress) <= 4 * elapsed + 2  # ≤ 4 Hz (elapsed is measured from outside: generous)
    assert "\r\x1b[2Khuman batch: 48 of 48 lines succeeded" in text  # the status line erased, then the summary


# ---- SIGKILL and resume -----------------------------------------------------------------------


def lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_when(process: subprocess.Popen, output: Path, lines: int, seconds: float = 60) -> bool:
    """SIGKILL the run once the output holds `lines` lines; False if it ended first."""
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        if lines_in(output) >= lines:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    process.wait(timeout=60)
    return False


def check_one_success_per_input(output: Path, count: int) -> None:
    results = read_output(output)
    ids = [line["custom_id"] for line in results]
    assert len(results) == count and sorted(ids) == sorted(f"q{n}" for n in range(count))
    assert all(line["error"] is None and line["response"]["status_code"] == 200 for line in results)


CONCURRENCY = 16


def test_killed_at_half_way_and_resumed_pays_for_at_most_the_requests_in_flight(fake, tmp_path, config):
    BatchReplies(fake, jitter=0.002)
    source = write_input(tmp_path / "in.jsonl", 2000)
    output = tmp_path / "out.jsonl"
    args = batch_args(source, output, config, "--concurrency", str(CONCURRENCY))
    assert kill_when(start(*args, stderr=subprocess.DEVNULL), output, 1000)
    resumed = human(*args)
    assert resumed.returncode == 0, resumed.stderr
    check_one_success_per_input(output, 2000)
    assert len(fake.requests) <= 2000 + CONCURRENCY


def test_killed_at_random_points_many_times_then_resumed_gives_one_success_line_per_input(fake, tmp_path, config):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    BatchReplies(fake, jitter=0.002)
    source = write_input(tmp_path / "in.jsonl", 2000)
    output = tmp_path / "out.jsonl"
    args = batch_args(source, output, config, "--concurrency", str(CONCURRENCY))
    kills = 0
    for _ in range(8):
        # 0 more lines: killed while starting up or checking the input
        if kill_when(start(*args, stderr=subprocess.DEVNULL), output, lines_in(output) + rng.choice(
                [0, rng.randint(1, 20), rng.randint(20, 300)])):
            kills += 1
    final = human(*args)
    assert final.returncode == 0, f"seed {seed}: {final.stderr}"
    check_one_success_per_input(output, 2000)
    assert len(fake.requests) <= 2000 + kills * CONCURRENCY, f"seed {seed}"


@pytest.mark.parametrize("seed", range(3))
def test_an_output_cut_at_any_byte_resumes_to_one_success_line_per_input(tmp_path, config, replies, seed):
    """What a kill can leave, made directly: the output cut at random byte offsets, many
    times over; every resume repairs the tail and sends exactly the lines that are missing."""
    import human as library

    rng = random.Random(seed)
    source = write_input(tmp_path / "in.jsonl", 30)
    output = tmp_path / "out.jsonl"
    library.batch(source, output, config=config)
    for _ in range(10):
        data = output.read_bytes()
        cut = rng.randrange(len(data) + 1)
        output.write_bytes(data[:cut])
        whole_lines = data[:cut].count(b"\n")
        summary = library.batch(source, output, config=config, concurrency=4)
        assert summary.sent == 30 - whole_lines
        assert summary.repaired_bytes == (0 if cut == 0 or data[cut - 1:cut] == b"\n" else len(
            data[:cut].rsplit(b"\n", 1)[-1]))
        check_one_success_per_input(output, 30)
