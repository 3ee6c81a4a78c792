"""`human keys`: a key stored by one command is used by the next, listed masked with its
source, removed by `unset`, and never printed, never in argv; with `--keyring` it lives
in the system keyring (a file-backed test keyring here) and only a marker is in the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .test_cli import CANARY, chunk, human

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(tmp_path: Path, fake) -> Path:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"default_provider": "local", "default_model": "test-model",
                                "providers": [{"name": "local", "base_url": fake.url_v1}]}))
    os.chmod(file, 0o600)
    return file


def test_set_from_stdin_then_chat_uses_it(fake, cfg):
    stored = human("keys", "set", "local", "--stdin", "--config", str(cfg), stdin=CANARY + "\n")
    assert stored.returncode == 0, stored.stderr
    assert CANARY not in stored.stdout + stored.stderr
    assert oct(cfg.stat().st_mode & 0o777) == "0o600"
    entry = json.loads(cfg.read_text())["providers"][0]
    assert entry == {"name": "local", "base_url": fake.url_v1, "api_key": CANARY}
    fake.stream([chunk("ok")])
    assert human("chat", "--config", str(cfg), "hi").returncode == 0
    assert fake.last.headers["Authorization"] == f"Bearer {CANARY}"


def test_list_is_masked_and_names_the_source(cfg, tmp_path):
    human("keys", "set", "local", "--stdin", "--config", str(cfg), stdin=CANARY + "\n")
    result = human("keys", "list", "--config", str(cfg), env={"GROQ_API_KEY": "gsk_" + "x" * 40})
    assert result.returncode == 0
    assert CANARY not in result.stdout and "gsk_xxxxxxx" not in result.stdout
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert f"{CANARY[:4]}…({len(CANARY)} chars)" in lines["local"] and "api_key in" in lines["local"]
    assert "env GROQ_API_KEY" in lines["groq"]


def test_unset_removes_it(cfg):
    human("keys", "set", "local", "--stdin", "--config", str(cfg), stdin=CANARY + "\n")
    result = human("keys", "unset", "local", "--config", str(cfg))
    assert result.returncode == 0 and "removed" in result.stdout
    assert "api_key" not in cfg.read_text() and CANARY not in cfg.read_text()
    assert "no keys" in human("keys", "list", "--config", str(cfg)).stderr


def test_path_is_the_user_file_never_the_workspace(tmp_path):
    (tmp_path / ".human").mkdir()
    result = human("keys", "path", env={"HOME": str(tmp_path / "home")}, cwd=tmp_path)
    assert result.stdout.strip() == str(tmp_path / "home" / ".human" / "config.json")


def test_set_without_a_terminal_or_stdin_refuses(tmp_path):
    result = human("keys", "set", "groq", "--config", str(tmp_path / "c.json"), stdin="")
    assert result.returncode == 2 and "--stdin" in result.stderr
    assert not (tmp_path / "c.json").exists()


def test_set_refuses_an_unknown_provider(tmp_path):
    result = human("keys", "set", "grok2", "--stdin", "--config", str(tmp_path / "c.json"), stdin=CANARY + "\n")
    assert result.returncode == 2 and "unknown provider" in result.stderr and CANARY not in result.stderr


def test_keyring_holds_the_key_and_resolution_reads_it(fake, cfg, tmp_path):
    pytest.importorskip("keyring")
    ring = tmp_path / "keyring.json"
    env = {"PYTHON_KEYRING_BACKEND": "tests.fakes.keyring_backend.FileKeyring", "HU_TEST_KEYRING": str(ring),
           "PYTHONPATH": str(ROOT)}
    stored = human("keys", "set", "local", "--keyring", "--stdin", "--config", str(cfg), stdin=CANARY + "\n",
                   env=env)
    assert stored.returncode == 0, stored.stderr
    assert CANARY not in cfg.read_text()  # only the marker is in the file
    assert json.loads(cfg.read_text())["providers"][0]["keyring"] is True
    assert json.loads(ring.read_text()) == {"human/local": CANARY}
    fake.stream([chunk("ok")])
    chat = human("chat", "--config", str(cfg), "hi", env=env)
    assert chat.returncode == 0, chat.stderr
    assert fake.last.headers["Authorization"] == f"Bearer {CANARY}"
    listed = human("keys", "list", "--config", str(cfg), env=env)
    assert "system keyring" in listed.stdout and CANARY not in listed.stdout
    assert human("keys", "unset", "local", "--config", str(cfg), env=env).returncode == 0
    assert json.loads(ring.read_text()) == {}


def test_a_keyring_entry_without_the_package_says_what_to_install(fake, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"default_provider": "local", "default_model": "m",
                               "providers": [{"name": "local", "base_url": fake.url_v1, "keyring": True}]}))
    # A keyring module that cannot be imported, as when the extra is not installed.
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "keyring.py").write_text("raise ImportError('not installed')\n")
    result = human("chat", "--config", str(cfg), "hi", env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 2 and "pip install 'human[keyring]'" in result.stderr
    assert fake.requests == []
