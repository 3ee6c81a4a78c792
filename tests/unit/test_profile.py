"""Capability profiles (human/profile.py): stored per endpoint, private to the user,
ignored when the endpoint moves, and turned into renames and drops."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from human import profile as profiles
from human.profile import Profile, changes_for, load_profile, profile_path, save_profile, state_dir, warn_once

BASE = "http://127.0.0.1:8080/v1"


def make(**fields) -> Profile:
    values = {"provider": "local", "base_url": BASE, "model": "qwen", "probed_at": "2025-01-01T00:00:00+00:00"}
    return Profile(**{**values, **fields})


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(profiles, "_warned", set())


def test_state_dir_is_home_human_state_unless_hu_state_dir_is_set(clean_env, monkeypatch, tmp_path):
    assert state_dir() == clean_env / ".human" / "state"
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path / "elsewhere"))
    assert state_dir() == tmp_path / "elsewhere"
    assert profile_path() == tmp_path / "elsewhere" / "profiles.json"


def test_save_then_load_round_trips_every_field():
    stored = make(accepts_max_tokens=False, accepts_max_completion_tokens=True, accepts_stream_options=False,
                  streams_usage=None, accepts_content_parts=True, supports_tools=True, tool_deltas_have_index=False,
                  tool_deltas_have_id=True, supports_json_object=True, supports_json_schema=False,
                  first_token_s=0.123)
    save_profile(stored)
    assert load_profile("local", BASE, "qwen") == stored


def test_missing_file_or_endpoint_loads_none():
    assert load_profile("local", BASE, "qwen") is None
    save_profile(make())
    assert load_profile("local", BASE, "other-model") is None
    assert load_profile("other", BASE, "qwen") is None


def test_profile_is_ignored_when_the_base_url_changes():
    save_profile(make(accepts_stream_options=False))
    assert load_profile("local", "http://127.0.0.1:9090/v1", "qwen") is None
    assert changes_for("local", "http://127.0.0.1:9090/v1", "qwen") == (frozenset(), {})


def test_a_stored_entry_whose_base_url_differs_from_its_key_is_ignored():
    save_profile(make())
    path = profile_path()
    document = json.loads(path.read_text())
    (key,) = document["profiles"]
    document["profiles"][key]["base_url"] = "http://elsewhere:1/v1"
    path.write_text(json.dumps(document))
    assert load_profile("local", BASE, "qwen") is None


def test_trailing_slash_does_not_count_as_another_endpoint():
    save_profile(make())
    assert load_profile("local", BASE + "/", "qwen") is not None


def test_file_is_0600_in_a_0700_directory():
    path = save_profile(make())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_save_replaces_one_endpoint_and_keeps_the_others():
    save_profile(make(model="a", supports_tools=True))
    save_profile(make(model="b", supports_tools=True))
    save_profile(make(model="a", supports_tools=False))
    assert load_profile("local", BASE, "a").supports_tools is False
    assert load_profile("local", BASE, "b").supports_tools is True
    assert not [p for p in profile_path().parent.iterdir() if p.name != "profiles.json"]  # no temp files left


def test_reads_are_cached_until_the_file_changes(monkeypatch):
    save_profile(make(supports_tools=True))
    assert load_profile("local", BASE, "qwen").supports_tools is True
    opened = []
    real_open = open
    with monkeypatch.context() as patch:
        patch.setattr("builtins.open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
        for _ in range(3):
            load_profile("local", BASE, "qwen")
    assert opened == []
    path = profile_path()
    document = json.loads(path.read_text())
    (key,) = document["profiles"]
    document["profiles"][key]["supports_tools"] = False
    path.write_text(json.dumps(document))
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert load_profile("local", BASE, "qwen").supports_tools is False


def test_damaged_file_reads_as_empty_and_says_so(caplog):
    path = profile_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="human.profile"):
        assert load_profile("local", BASE, "qwen") is None
    assert "human doctor" in caplog.text
    save_profile(make())  # and doctor can write over it
    assert load_profile("local", BASE, "qwen") is not None


def test_unknown_fields_from_a_newer_version_are_ignored():
    data = {**make().to_json(), "learned_something_new": True}
    assert Profile.from_json(data) == make()


def test_importing_the_module_reads_no_file():
    import subprocess
    import sys

    code = ("import builtins, sys; opened = []; real = builtins.open\n"
            "builtins.open = lambda *a, **k: opened.append(a) or real(*a, **k)\n"
            "import human.profile, human.client\n"
            "print([a for a in opened if 'profiles' in str(a[0])])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- what a profile changes -----------------------------------------------------------------------


def test_nothing_known_changes_nothing():
    assert make().drop == frozenset() and make().rename == {}


def test_only_max_completion_tokens_accepted_renames_max_tokens():
    p = make(accepts_max_tokens=False, accepts_max_completion_tokens=True)
    assert p.rename == {"max_tokens": "max_completion_tokens"} and p.drop == frozenset()


def test_only_max_tokens_accepted_renames_max_completion_tokens():
    p = make(accepts_max_tokens=True, accepts_max_completion_tokens=False)
    assert p.rename == {"max_completion_tokens": "max_tokens"}


def test_both_token_fields_rejected_drops_both():
    p = make(accepts_max_tokens=False, accepts_max_completion_tokens=False)
    assert p.drop == {"max_tokens", "max_completion_tokens"} and p.rename == {}


def test_rejected_stream_options_is_dropped():
    assert make(accepts_stream_options=False).drop == {"stream_options"}
    assert make(accepts_stream_options=True, streams_usage=False).drop == frozenset()


def test_response_format_is_dropped_only_when_both_json_modes_are_rejected():
    assert make(supports_json_object=False, supports_json_schema=True).drop == frozenset()
    assert make(supports_json_object=False, supports_json_schema=None).drop == frozenset()
    assert make(supports_json_object=False, supports_json_schema=False).drop == {"response_format"}


def test_rejected_tools_are_not_dropped():
    assert make(supports_tools=False).drop == frozenset()


def test_changes_for_reads_the_saved_profile():
    save_profile(make(accepts_max_tokens=False, accepts_max_completion_tokens=True, accepts_stream_options=False))
    assert changes_for("local", BASE, "qwen") == (frozenset({"stream_options"}),
                                                  {"max_tokens": "max_completion_tokens"})


def test_each_adjustment_is_warned_once_per_process(caplog):
    logger = logging.getLogger("human.client")
    with caplog.at_level(logging.WARNING, logger="human.client"):
        for _ in range(3):
            warn_once(logger, "local", "qwen", ["dropped stream_options (the endpoint rejects it)"])
        warn_once(logger, "local", "other", ["dropped stream_options (the endpoint rejects it)"])
    assert [r.getMessage().split("]")[0] for r in caplog.records] == ["[local/qwen", "[local/other"]
    assert "human doctor" in caplog.records[0].getMessage()


def test_hu_state_dir_is_used_for_saving(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HU_STATE_DIR", str(tmp_path / "state"))
    assert save_profile(make()) == tmp_path / "state" / "profiles.json"


def test_changes_follow_the_file_when_it_is_rewritten_or_removed():
    save_profile(make(accepts_stream_options=False))
    assert changes_for("local", BASE, "qwen")[0] == {"stream_options"}
    assert changes_for("local", BASE, "qwen")[0] == {"stream_options"}  # memoised
    save_profile(make(accepts_stream_options=True))
    assert changes_for("local", BASE, "qwen") == (frozenset(), {})
    save_profile(make(accepts_stream_options=False))
    profile_path().unlink()
    assert changes_for("local", BASE, "qwen") == (frozenset(), {})


def test_dry_run_shows_what_the_profile_changes(tmp_path):
    import human
    from human.profile import Profile, save_profile

    save_profile(Profile(provider="compatible", base_url="http://127.0.0.1:9/v1", model="m",
                         probed_at="2026-11-29T00:00:00Z", accepts_max_tokens=False,
                         accepts_max_completion_tokens=True))
    client = human.Client(base_url="http://127.0.0.1:9/v1", model="m", config=human.Config(data={}))
    preview = client.dry_run("hi", max_tokens=10)
    assert preview["body"]["max_completion_tokens"] == 10 and "max_tokens" not in preview["body"]
    assert any("renamed max_tokens to max_completion_tokens" in a for a in preview["adjustments"])
