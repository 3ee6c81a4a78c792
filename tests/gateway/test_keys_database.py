"""The gateway's keys in PostgreSQL (`"keys_store": "database"`): several gateway machines
share them with no shared file; a key created or revoked anywhere holds everywhere within
a couple of seconds; the database holds hashes, never a secret; two machines creating
keys at once lose none; a database lost while running leaves each gateway its keys."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from human.config import Config
from human.errors import ConfigError
from human.gateway.dbkeys import DatabaseKeys
from human.gateway.settings import settings_from
from tests.fakes.openai_server import FakeServer

from .test_keys_limits import HI, USAGE, post


def _until(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def test_two_gateways_share_keys_through_the_database(database_url: str, gateway: Any, fake: FakeServer) -> None:
    first = gateway(database_url=database_url, keys_store="database")
    second = gateway(database_url=database_url, keys_store="database")
    fake.completion("ok", usage=USAGE).as_default()
    keys = DatabaseKeys(database_url)  # what `human gateway keys create` on a third machine does
    try:
        record, key = keys.create("alice", rpm=100)
        for gw in (first, second):  # seen by both, without a restart (open on loopback until then)
            assert _until(lambda gw=gw: post(gw.url, None, {"model": "fast", "messages": HI})[0] == 401)
            assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
        keys.revoke("alice")
        for gw in (first, second):
            assert _until(lambda gw=gw: post(gw.url, key, {"model": "fast", "messages": HI})[0] == 401)
    finally:
        keys.close()
    secret = key.split("-", 2)[2]
    with psycopg.connect(database_url) as db:
        stored = db.execute("SELECT body FROM documents").fetchall()
        assert stored and record.digest in stored[0][0]
        for table in ("documents", "exchanges"):  # the secret is nowhere, only its hash
            rows = db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - fixed names
            assert secret not in repr(rows)


def test_keys_created_at_once_on_several_machines_are_all_kept(database_url: str) -> None:
    stores = [DatabaseKeys(database_url) for _ in range(6)]
    try:
        threads = [threading.Thread(target=store.create, args=(f"key-{i}",)) for i, store in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(key.name for key in stores[0].load()) == [f"key-{i}" for i in range(6)]
        with pytest.raises(ConfigError, match="already exists"):
            stores[1].create("key-3")
    finally:
        for store in stores:
            store.close()


def test_a_database_lost_while_running_leaves_the_gateway_its_keys(database_url: str, gateway: Any,
                                                                   fake: FakeServer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    keys = DatabaseKeys(database_url)
    _, key = keys.create("alice")
    keys.close()
    gw = gateway(database_url=database_url, keys_store="database", log=False)
    fake.completion("ok", usage=USAGE).as_default()
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    with caplog.at_level("WARNING"):
        assert _until(lambda: "the gateway keeps the 1 key(s) it has" in caplog.text)
        time.sleep(1.5)
    assert caplog.text.count("keeps the 1 key(s)") == 1  # said once, not every second
    assert not any(task.done() for task in gw.gateway._tasks)  # the watcher goes on, for when it is back
    assert post(gw.url, key, {"model": "fast", "messages": HI})[0] == 200
    assert post(gw.url, None, {"model": "fast", "messages": HI})[0] == 401


def test_keys_in_the_database_need_its_url() -> None:
    with pytest.raises(ConfigError, match="set database_url too"):
        settings_from(Config({"gateway": {"keys_store": "database"}}))
    with pytest.raises(ConfigError, match='"file" or "database"'):
        settings_from(Config({"gateway": {"keys_store": "redis"}}))
    with pytest.raises(ConfigError, match="cannot connect"):
        DatabaseKeys("postgresql://nobody@127.0.0.1:9/none")


def test_the_keys_commands_use_the_database(database_url: str, tmp_path: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from human.cli import main

    from .harness import write_config

    config = write_config(tmp_path, {"gateway": {"database_url": database_url, "keys_store": "database",
                                                 "keys_file": str(tmp_path / "unused.json")}})
    assert main(["--config", str(config), "gateway", "keys", "create", "carol", "--tpm", "1000"]) == 0
    captured = capsys.readouterr()
    key = captured.out.strip()
    assert key.startswith("hgw-") and "PostgreSQL postgresql://" in captured.err
    assert not (tmp_path / "unused.json").exists()
    keys = DatabaseKeys(database_url)
    try:
        assert [(k.name, k.tpm) for k in keys.load()] == [("carol", 1000)]
    finally:
        keys.close()
    assert main(["--config", str(config), "gateway", "keys", "revoke", "carol"]) == 0
    assert main(["--config", str(config), "gateway", "keys", "list", "--json"]) == 0
    assert capsys.readouterr().out.strip().endswith("[]")
