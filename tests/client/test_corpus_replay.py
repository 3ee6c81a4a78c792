"""Every recorded deviation in tests/data/corpus, replayed by the fake server over real
HTTP (split into awkward writes) to both clients, must give the expected answer or the
expected error: the same table the pure-core corpus test uses."""

from __future__ import annotations

import pytest

from human import errors
from tests.unit.test_corpus import CORPUS, EXPECTED, FILES, summary


def expect(name: str, run) -> None:
    expected = EXPECTED[name]
    if "error" in expected:
        with pytest.raises(getattr(errors, expected["error"])) as caught:
            run()
        if "message_contains" in expected:
            assert expected["message_contains"] in str(caught.value)
        return
    got = summary(run())
    for key, value in expected.items():
        if key in got:
            assert got[key] == value, f"{name}: {key}"


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_through_the_wire(driver, fake, config_for, name):
    fake.replay(CORPUS / name, chunk_bytes=5)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    if name.endswith(".sse"):
        expect(name, lambda: handle.stream("hi"))
    else:
        expect(name, lambda: handle.chat("hi"))
