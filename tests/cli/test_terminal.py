"""`human` at a terminal (a pseudo-terminal): what only shows where a person types —
the interactive chat's flags and /set, dry runs that send nothing, the status line while
waiting, colours, the config init questions, hidden key entry, a table that fits
(issue 11)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .terminal import Terminal

CANARY = "sk-canary-terminal-5c7e9a1b3d5f7a9c"
ERASE = "\r\x1b[2K"


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "test-model",
                                "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
                                "reliability": {"provider_retries": 2, "provider_backoff_ms": 1}}))
    os.chmod(file, 0o600)
    return file


def chunk(text: str = "", finish: str | None = None, **delta: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text, **delta} if text else delta,
                         "finish_reason": finish}]}


# ---- defect 1: dry run, in the interactive chat too ------------------------------------------


def test_dry_run_without_a_prompt_in_a_terminal_sends_nothing(fake, cfg):
    term = Terminal("chat", "--config", str(cfg), "--dry-run", "-t", "0.4")
    term.expect("dry run: nothing is sent")
    term.expect("you> ")
    term.send("hello\n")
    term.expect('"url"')
    term.expect("you> ")
    term.send("/exit\n")
    assert term.finish() == 0
    assert fake.requests == []  # before issue 11 this sent "hello" to the server
    assert '"temperature": 0.4' in term.text and CANARY not in term.text


# ---- defect 2: every flag in the interactive chat, and /set ------------------------------------


def test_interactive_chat_sends_every_flag_and_set_changes_them(fake, cfg):
    fake.stream([chunk("first answer")])
    fake.stream([chunk("second answer")])
    term = Terminal("chat", "--config", str(cfg), "-t", "0.2", "--max-tokens", "7", "--system", "be terse")
    term.expect("you> ")
    term.send("hello\n")
    term.expect("first answer")
    term.expect("you> ")
    term.send("/set temperature 0.3\n")
    term.expect("(temperature 0.3)")
    term.send("/set max_tokens none\n")
    term.expect("(max_tokens not set)")
    term.send("again\n")
    term.expect("second answer")
    term.send("/exit\n")
    assert term.finish() == 0
    first, second = (request.json for request in fake.requests)
    assert first["temperature"] == 0.2 and first["max_tokens"] == 7  # ignored before issue 11
    assert first["messages"][0] == {"role": "system", "content": "be terse"}
    assert second["temperature"] == 0.3 and "max_tokens" not in second
    assert [m["content"] for m in second["messages"]] == ["be terse", "hello", "first answer", "again"]


def test_set_rejects_what_it_does_not_know(fake, cfg):
    term = Terminal("chat", "--config", str(cfg))
    term.expect("you> ")
    term.send("/set temperature hot\n")
    term.expect("takes a number")
    term.send("/set colour blue\n")
    term.expect("/set knows")
    term.send("/set\n")
    term.expect("temperature not set")
    term.send("/exit\n")
    assert term.finish() == 0 and fake.requests == []


# ---- defect 5: a status line while waiting, erased before the answer ----------------------------


def test_status_line_shows_the_wait_and_the_retry_then_is_erased(fake, cfg):
    fake.reply(status=429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "200"})
    fake.stream([chunk("Hello")])
    term = Terminal("chat", "--config", str(cfg), "hi")
    assert term.finish() == 0
    text = term.text
    waiting = text.index("waiting for local…")
    retry = text.index("rate limited, retrying in 0.2 s (attempt 2/3)")
    answer = text.index("Hello")
    assert waiting < retry < answer
    assert ERASE in text[retry:answer]  # the status line is gone before the answer starts
    assert text.rstrip().endswith("Hello")


def test_no_status_line_when_stderr_is_not_a_terminal(fake, cfg):
    from .test_cli import human

    fake.reply(status=429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "100"})
    fake.stream([chunk("Hello")])
    result = human("chat", "--config", str(cfg), "hi")
    assert result.returncode == 0 and result.stdout == "Hello\n"
    assert result.stderr == "" and "\x1b" not in result.stdout


# ---- colours ----------------------------------------------------------------------------------


def test_errors_are_red_and_reasoning_dim_on_a_terminal(fake, cfg):
    fake.stream([chunk(reasoning_content="thinking it over"), chunk("the answer")])
    term = Terminal("chat", "--config", str(cfg), "--reasoning", "hi")
    assert term.finish() == 0
    assert "\x1b[2mthinking it over" in term.text and "the answer" in term.text
    fake.reply(status=401, json={"error": {"message": "bad key"}})
    term = Terminal("chat", "--config", str(cfg), "hi")
    assert term.finish() == 1
    assert "\x1b[31mhuman: error: [local/test-model] HTTP 401" in term.text


def test_no_colour_with_no_color_set(fake, cfg):
    fake.stream([chunk(reasoning_content="thinking"), chunk("answer")])
    term = Terminal("chat", "--config", str(cfg), "--reasoning", "hi", env={"NO_COLOR": "1"})
    assert term.finish() == 0
    fake.reply(status=401, json={"error": {"message": "bad key"}})
    second = Terminal("chat", "--config", str(cfg), "hi", env={"NO_COLOR": "1"})
    assert second.finish() == 1
    assert "\x1b[2m" not in term.text + second.text and "\x1b[31m" not in term.text + second.text


# ---- defect 8: config init in a terminal asks again instead of giving up -------------------------


def test_config_init_asks_again_and_keeps_earlier_answers(tmp_path: Path):
    target = tmp_path / "asked.json"
    term = Terminal("config", "init", "--config", str(target))
    term.expect("provider")
    term.send("compatibel\n")
    term.expect("unknown provider")
    term.expect("provider")
    term.send("compatible\n")
    term.expect("base URL")
    term.send("localhost:8000\n")
    term.expect("not an http(s) URL")
    term.send("http://localhost:8000/v1\n")
    term.expect("model")
    term.send("\n")
    term.expect("a model is needed")  # before issue 11: "--model is required when not run in a terminal"
    term.send("local-model\n")
    term.expect("API key")
    term.send("\n")
    assert term.finish() == 0, term.text
    assert json.loads(target.read_text()) == {
        "default_provider": "compatible", "default_model": "local-model",
        "providers": [{"name": "compatible", "base_url": "http://localhost:8000/v1"}]}


def test_config_init_offers_the_registry_default_model(tmp_path: Path):
    from human.config.registry import lookup

    row = lookup("groq")
    assert row is not None and row.default_model
    target = tmp_path / "asked.json"
    term = Terminal("config", "init", "--config", str(target))
    term.expect("provider")
    term.send("groq\n")
    term.expect(f"model [{row.default_model}]")
    term.send("\n")
    term.expect("API key")
    term.send(CANARY + "\n")
    assert term.finish() == 0, term.text
    assert json.loads(target.read_text())["default_model"] == row.default_model
    assert CANARY not in term.text


# ---- human keys set: the key is asked for, hidden -----------------------------------------------


def test_keys_set_asks_for_the_key_without_echo(tmp_path: Path):
    target = tmp_path / "config.json"
    term = Terminal("keys", "set", "groq", "--config", str(target))
    term.expect("key for groq")
    term.send(CANARY + "\n")
    assert term.finish() == 0, term.text
    assert CANARY not in term.text
    assert json.loads(target.read_text()) == {"providers": [{"name": "groq", "api_key": CANARY}]}
    assert oct(target.stat().st_mode & 0o777) == "0o600"


# ---- defect 8: the providers table fits the terminal --------------------------------------------


@pytest.mark.parametrize("columns", [80, 120])
def test_providers_table_fits_the_terminal(columns: int):
    term = Terminal("providers", columns=columns)
    assert term.finish() == 0
    table = [line for line in term.text.replace("\r", "").splitlines() if line and "providers," not in line]
    assert len(table) > 50
    assert max(len(line) for line in table) <= columns  # 156 columns before issue 11
