"""`human batch` against servers nobody on this project wrote (aimock, the LiteLLM proxy):
the command as a user runs it, both line formats, a 429 that aimock sends with a real
Retry-After, and an exhausted quota that stops the run so that a rerun can finish it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .interop_support import aimock_config, journal, litellm_config

pytestmark = pytest.mark.interop


def batch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "human", "batch", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_input(path: Path, models: list[str | None]) -> Path:
    with open(path, "w") as file:
        for number, model in enumerate(models):
            body: dict[str, Any] = {"messages": [{"role": "user", "content": f"question {number}"}], "max_tokens": 16}
            if model is not None:
                body["model"] = model
            if number % 2:  # OpenAI Batch lines and plain lines, mixed
                line = {"custom_id": f"q{number}", "method": "POST", "url": "/v1/chat/completions", "body": body}
            else:
                line = {"custom_id": f"q{number}", **body}
            file.write(json.dumps(line) + "\n")
    return path


def test_a_batch_against_aimock_writes_one_answer_per_line(aimock, test_id, write_config, tmp_path):
    config = write_config(aimock_config(aimock, test_id))
    source = write_input(tmp_path / "in.jsonl", [None] * 30)
    result = batch(str(source), "-o", str(tmp_path / "out.jsonl"), "--config", str(config), "--concurrency", "8")
    assert result.returncode == 0, result.stderr
    results = lines(tmp_path / "out.jsonl")
    assert sorted(line["custom_id"] for line in results) == sorted(f"q{n}" for n in range(30))
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in results} == {"Hello from aimock."}
    assert len(journal(aimock, test_id)) == 30
    assert result.stderr.startswith("human batch: 30 of 30 lines succeeded")


def test_a_429_with_retry_after_from_aimock_is_waited_out_and_the_line_sent_again(aimock, test_id, write_config,
                                                                                   tmp_path):
    config = write_config(aimock_config(aimock, test_id, reliability={"provider_retries": 0}))
    source = write_input(tmp_path / "in.jsonl", ["mock-429-once"] + ["any-model"] * 3)
    began = time.monotonic()
    result = batch(str(source), "-o", str(tmp_path / "out.jsonl"), "--config", str(config), "--concurrency", "1")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began >= 1.0  # aimock's Retry-After: 1
    first = next(line for line in lines(tmp_path / "out.jsonl") if line["custom_id"] == "q0")
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "Recovered after a 429."
    assert "1 answers were 429" in result.stderr


def test_an_exhausted_quota_stops_the_run_and_nothing_is_written_for_it(aimock, test_id, write_config, tmp_path):
    config = write_config(aimock_config(aimock, test_id))
    source = write_input(tmp_path / "in.jsonl", ["any-model", "mock-429-quota", "any-model"])
    result = batch(str(source), "-o", str(tmp_path / "out.jsonl"), "--config", str(config), "--concurrency", "1")
    assert result.returncode == 1 and "out of quota" in result.stderr
    assert [line["custom_id"] for line in lines(tmp_path / "out.jsonl")] == ["q0"]


def test_a_batch_through_the_litellm_proxy_counts_its_usage(litellm, write_config, tmp_path):
    config = write_config(litellm_config(litellm))
    source = write_input(tmp_path / "in.jsonl", [None] * 6)
    result = batch(str(source), "-o", str(tmp_path / "out.jsonl"), "--config", str(config), "--json")
    summary = json.loads(result.stdout)
    assert result.returncode == 0 and summary["succeeded"] == 6
    assert summary["output_prompt_tokens"] == sum(line["human"]["prompt_tokens"]
                                                  for line in lines(tmp_path / "out.jsonl")) > 0
