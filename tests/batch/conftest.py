"""Fixtures for the batch tests: a config pointing at the fake server, input files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.batch_replies import BatchReplies

CANARY = "sk-canary-batch-9d2e4f6a8b0c1e3d5f7a"
# The fake server's model has a price (per million tokens), so answers carry a cost.
PRICES = [{"model": "test-model", "input_mtok": 1.0, "output_mtok": 2.0}]


def prompt(number: int) -> str:
    return f"question {number}"


def write_input(path: Path, count: int, *, start: int = 0, **fields: Any) -> Path:
    with open(path, "w") as file:
        for number in range(start, start + count):
            file.write(json.dumps({"custom_id": f"q{number}", "messages": [{"role": "user", "content": prompt(number)}],
                                   **fields}) + "\n")
    return path


def read_output(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def make_config(tmp_path: Path, fake: Any) -> Callable[..., Path]:
    """make_config(**reliability) -> a config file whose default provider is the fake server."""

    def make(**reliability: Any) -> Path:
        file = tmp_path / "config.json"
        file.write_text(json.dumps({
            "default_provider": "local", "default_model": "test-model",
            "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
            "reliability": {"provider_retries": 0, **reliability}, "prices": PRICES}))
        os.chmod(file, 0o600)
        return file

    return make


@pytest.fixture
def config(make_config: Callable[..., Path]) -> Path:
    return make_config()


@pytest.fixture
def replies(fake: Any) -> BatchReplies:
    return BatchReplies(fake)
