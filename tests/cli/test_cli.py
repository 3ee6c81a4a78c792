"""The `human` command end to end against the fake server: a real subprocess, so exit
codes, stdin handling and what reaches the terminal are exactly what a user sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CANARY = "sk-canary-cli-4b8d2f6a0c3e5a7b9d1f"


def human(*args: str, env: dict | None = None, stdin: str | None = None, cwd: Path | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "human", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=cwd)


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "test-model",
                                "providers": [{"name": "local", "base_url": fake.url_v1, "api_key": CANARY}],
                                "reliability": {"provider_retries": 0}}))
    os.chmod(file, 0o600)
    return file


def chunk(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def test_chat_streams_the_answer_to_stdout(fake, cfg):
    fake.stream([chunk("Hello"), chunk(", world")])
    result = human("chat", "--config", str(cfg), "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, world\n"
    assert fake.last.json["messages"] == [{"role": "user", "content": "hi"}]


def test_chat_appends_piped_stdin_to_the_prompt(fake, cfg):
    fake.completion("short")
    result = human("chat", "--config", str(cfg), "--no-stream", "summarise", stdin="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "short\n"
    assert fake.last.json["messages"][0]["content"] == "summarise\n\nline one\nline two\n"


def test_chat_flags_reach_the_request(fake, cfg):
    fake.completion("ok")
    result = human("chat", "--config", str(cfg), "--no-stream", "--system", "be terse", "--temperature", "0",
                   "--max-tokens", "12", "--model", "other-model", "hi")
    assert result.returncode == 0, result.stderr
    sent = fake.last.json
    assert sent["model"] == "other-model" and sent["temperature"] == 0 and sent["max_tokens"] == 12
    assert sent["messages"][0] == {"role": "system", "content": "be terse"}


def test_chat_json_prints_the_full_response(fake, cfg):
    fake.completion("ok", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    result = human("chat", "--config", str(cfg), "--json", "hi")
    data = json.loads(result.stdout)
    assert data["content"] == "ok" and data["usage"]["total_tokens"] == 2 and data["provider"] == "local"


def test_usage_flag_prints_usage_to_stderr(fake, cfg):
    fake.completion("ok", usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    result = human("chat", "--config", str(cfg), "--no-stream", "--usage", "hi")
    assert "prompt 3, completion 4, total 7" in result.stderr


def test_dry_run_prints_url_masked_headers_and_body(fake, cfg):
    result = human("chat", "--config", str(cfg), "--dry-run", "--temperature", "0", "hi")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["url"] == fake.url_v1 + "/chat/completions"
    assert data["body"]["temperature"] == 0 and data["body"]["stream"] is True
    assert CANARY not in result.stdout and CANARY not in result.stderr
    assert fake.requests == []


def test_api_error_is_one_line_and_exit_1(fake, cfg):
    fake.reply(status=401, json={"error": {"message": f"Incorrect API key provided: {CANARY}"}})
    result = human("chat", "--config", str(cfg), "hi")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "HTTP 401" in result.stderr
    assert "Traceback" not in result.stderr
    assert CANARY not in result.stderr + result.stdout


def test_debug_shows_a_traceback_with_the_key_masked(fake, cfg):
    fake.reply(status=500, json={"error": {"message": "boom"}})
    result = human("chat", "--config", str(cfg), "--debug", "hi")
    assert result.returncode == 1 and "Traceback" in result.stderr
    assert CANARY not in result.stderr


def test_no_provider_configured_says_how_and_exits_2(tmp_path: Path):
    # No local server either (HUMAN_LOCAL_PORTS=none: the zero-config start looks nowhere).
    result = human("chat", "hi", env={"HOME": str(tmp_path), "HUMAN_LOCAL_PORTS": "none"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "human config init" in result.stderr and "Traceback" not in result.stderr


def test_bad_config_is_one_clear_line_and_exit_2(tmp_path: Path):
    bad = tmp_path / "c.json"
    bad.write_text('{"default_model": "x",}')
    result = human("chat", "--config", str(bad), "hi")
    assert result.returncode == 2 and "line 1" in result.stderr and "Traceback" not in result.stderr


def test_providers_lists_the_registry(tmp_path: Path):
    result = human("providers")
    assert result.returncode == 0
    assert "groq" in result.stdout and "https://api.groq.com/openai/v1" in result.stdout
    assert "providers" in result.stderr


def test_providers_show_explains_resolution_with_the_key_masked(tmp_path: Path):
    result = human("providers", "show", "groq", "--model", "llama", env={"GROQ_API_KEY": CANARY})
    assert result.returncode == 0, result.stderr
    assert "https://api.groq.com/openai/v1/chat/completions" in result.stdout
    assert "env GROQ_API_KEY" in result.stdout
    assert '"model": "llama"' in result.stdout
    assert CANARY not in result.stdout


def test_config_init_writes_a_private_file_from_flags(tmp_path: Path):
    target = tmp_path / "new.json"
    result = human("config", "init", "--config", str(target), "--provider", "groq", "--model", "llama",
                   "--api-key-stdin", stdin=CANARY + "\n")
    assert result.returncode == 0, result.stderr
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    data = json.loads(target.read_text())
    assert data["default_provider"] == "groq" and data["providers"][0]["api_key"] == CANARY
    assert CANARY not in result.stdout + result.stderr
    again = human("config", "init", "--config", str(target), "--provider", "groq", "--model", "x")
    assert again.returncode == 2 and "--force" in again.stderr


def test_config_show_masks_keys_and_names_sources(cfg):
    result = human("config", "show", "--config", str(cfg))
    assert result.returncode == 0
    assert CANARY not in result.stdout
    assert "/default_model  <-  " in result.stdout


def test_config_validate_and_path(cfg):
    assert human("config", "validate", "--config", str(cfg)).stdout.startswith("ok: ")
    assert str(cfg) in human("config", "path", "--config", str(cfg)).stdout


def test_models_lists_from_the_server(fake, cfg):
    fake.reply(json={"data": [{"id": "m1", "owned_by": "me"}, {"id": "m2"}]})
    result = human("models", "--config", str(cfg))
    assert result.stdout.splitlines() == ["m1  (me)", "m2"]


def test_models_on_a_server_without_the_route(fake, cfg):
    fake.reply(status=404, json={"error": {"message": "Not Found"}})
    result = human("models", "--config", str(cfg))
    assert result.returncode == 1 and "does not implement GET /models" in result.stderr


def test_interactive_chat_keeps_the_conversation(fake, cfg):
    """Drive the REPL through a pseudo-terminal: /model switches, history is sent back."""
    import pty
    import select
    import time

    fake.stream([chunk("first answer")])
    fake.stream([chunk("second answer")])
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "human", "chat", "--config", str(cfg)], stdin=follower,
                               stdout=follower, stderr=follower, env={**os.environ, "TERM": "dumb"})
    os.close(follower)
    output = b""

    def read_until(marker: bytes, seconds: float = 15) -> None:
        nonlocal output
        deadline = time.monotonic() + seconds
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    output += os.read(leader, 4096)
                except OSError:
                    break
        assert marker in output, output.decode(errors="replace")

    try:
        read_until(b"you> ")
        os.write(leader, b"hello\n")
        read_until(b"first answer")
        read_until(b"you> ")
        os.write(leader, b"/model next-model\n")
        read_until(b"next-model)")
        os.write(leader, b"again\n")
        read_until(b"second answer")
        os.write(leader, b"/exit\n")
        process.wait(timeout=10)
    finally:
        process.kill()
        os.close(leader)
    assert process.returncode == 0
    second = fake.requests[1].json
    assert second["model"] == "next-model"
    assert [m["content"] for m in second["messages"]] == ["hello", "first answer", "again"]


def test_ctrl_c_stops_a_stream_cleanly(fake, cfg):
    import signal
    import time

    fake.stream([chunk(f"word{i} ") for i in range(20)], delay=0.3)
    process = subprocess.Popen([sys.executable, "-m", "human", "chat", "--config", str(cfg), "hi"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    first = process.stdout.read(5)  # blocks until the first words arrive
    assert first.startswith("word0") and time.monotonic() < deadline
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 130
    assert "Traceback" not in err
    assert "word19" not in first + out


def test_config_init_asks_in_a_terminal(tmp_path: Path):
    """Provider, model and key are asked for; the key is not echoed or printed."""
    import pty
    import select
    import time

    target = tmp_path / "asked.json"
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "human", "config", "init", "--config", str(target)],
                               stdin=follower, stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    seen = b""

    def answer(prompt: bytes, reply: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 15
        while prompt not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.1)[0]:
                seen += os.read(leader, 4096)
        assert prompt in seen, seen.decode(errors="replace")
        os.write(leader, reply)

    try:
        answer(b"provider", b"groq\n")
        answer(b"model", b"llama-3.3-70b-versatile\n")
        answer(b"API key", CANARY.encode() + b"\n")
        process.wait(timeout=15)
        while select.select([leader], [], [], 0.2)[0]:
            try:
                seen += os.read(leader, 4096)
            except OSError:
                break
    finally:
        process.kill()
        os.close(leader)
    assert process.returncode == 0, seen.decode(errors="replace")
    data = json.loads(target.read_text())
    assert data == {"default_provider": "groq", "default_model": "llama-3.3-70b-versatile",
                    "providers": [{"name": "groq", "api_key": CANARY}]}
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert CANARY.encode() not in seen


def test_config_option_is_accepted_before_the_command(fake, cfg):
    fake.completion("ok")
    result = human("--config", str(cfg), "chat", "--no-stream", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_help_lists_every_command_and_each_command_its_own_arguments():
    """A command's arguments are added only when it is chosen (cli/__init__.py, `_Command`):
    its --help, and a nested command's, must still show them all."""
    top = human("--help")
    assert top.returncode == 0, top.stderr
    for command in ("chat", "logs", "usage", "providers", "config", "keys", "models", "doctor", "batch", "gateway"):
        assert f"    {command} " in top.stdout, command
    assert "serve every configured provider behind one OpenAI-compatible endpoint" in _unwrapped(top.stdout)
    batch = human("batch", "--help")
    assert "--concurrency N" in batch.stdout and "Run the same command again to resume" in _unwrapped(batch.stdout)
    create = human("gateway", "keys", "create", "--help")
    assert "--budget-period {total,day,month}" in create.stdout and "--config PATH" in create.stdout
    bad = human("gateway", "keys", "create")
    assert bad.returncode == 2 and "the following arguments are required: name" in bad.stderr


def _unwrapped(text: str) -> str:
    """Help text with argparse's wrapping (which follows the terminal's width) undone."""
    return " ".join(text.split())
