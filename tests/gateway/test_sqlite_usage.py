"""Usage rows in the default SQLite log equal the requests answered, with the log's
journals rotating, a writer importing while busy, and the gateway stopped and started
again on the same log: the path where rows were once lost (a whole journal deleted
unread when an import slice ended a few bytes into it, at ~5,000 requests a second)."""

from __future__ import annotations

import http.client
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from human.store import journal, open_store
from tests.fakes.openai_server import FakeServer

from .test_keys_limits import HI, USAGE

pytestmark = pytest.mark.skipif(not journal.available, reason="no journals without fcntl (Windows)")


def hammer(url: str, callers: int, each: int) -> int:
    """`callers` keep-alive connections sending `each` requests; the 200s."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": "fast", "messages": HI})
    answered, lock = [0], threading.Lock()

    def caller() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        ok = 0
        for _ in range(each):
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            ok += response.status == 200
        conn.close()
        with lock:
            answered[0] += ok

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered[0]


def test_usage_rows_equal_the_answers_across_rotations_busy_imports_and_restarts(
        gateway: Any, fake: FakeServer, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Small journals and a low backlog limit: at a test's scale, what a saturated gateway
    # does over minutes (many rotated journals, the writer importing in short slices).
    monkeypatch.setattr(journal, "ROTATE_BYTES", 12 << 10)
    monkeypatch.setattr("human.store.writer.BACKLOG_LIMIT", 50)
    monkeypatch.setattr("human.store.writer.BUSY_IMPORT_BYTES", 3)  # less than a record: one a slice
    monkeypatch.setattr("human.store.sqlite.IMPORT_BYTES", 5000)
    config["prices"] = [{"provider": "fake", "model": "*", "input_mtok": 2.0, "output_mtok": 8.0}]
    fake.completion("ok", usage=USAGE).as_default()
    answered = 0
    for _ in range(3):  # three gateway lifetimes on one log
        gw = gateway()
        answered += hammer(gw.url, callers=16, each=60)
        gw.close()
    assert answered == 3 * 16 * 60
    db = Path(config["gateway"]["log_path"])
    store = open_store(db)  # a reader imports what the gateways left in their journals
    try:
        rows = store.usage(None, [])
        assert rows[0].exchanges == answered
        assert rows[0].prompt_tokens == 9 * answered and rows[0].completion_tokens == 3 * answered
        assert rows[0].unpriced == 0 and rows[0].cost == Decimal("0.000042") * answered  # never a silent $0
    finally:
        store.close()
    assert journal.journal_names(db) == []  # every journal imported and deleted
