"""Loading, merging, validating the config file and the environment on top of it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import jsonschema
import pytest

from human.config import load_config, schema
from human.errors import ConfigError, UnknownProviderError


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def home() -> Path:
    return Path(os.environ["HOME"])


def test_missing_files_give_defaults():
    config = load_config()
    assert config.files == ()
    assert config.default_provider is None
    assert config.reliability.provider_retries == 2


def test_workspace_file_overrides_user_file_key_by_key(home: Path):
    write(home / ".human/config.json", {"default_provider": "groq", "default_model": "a",
                                        "providers": [{"name": "groq", "api_key": "k1", "base_url": "https://x/v1"}]})
    write(Path.cwd() / ".human/config.json", {"default_model": "b", "providers": [{"name": "groq", "api_key": "k2"}]})
    config = load_config()
    assert config.default_provider == "groq"
    assert config.default_model == "b"
    entry = config.provider_entry("groq")
    assert entry == {"name": "groq", "api_key": "k2", "base_url": "https://x/v1"}
    assert config.source_of("/default_model").endswith(".human/config.json")
    assert config.source_of("/default_provider") == "~/.human/config.json"


def test_explicit_path_reads_only_that_file(home: Path, tmp_path: Path):
    write(home / ".human/config.json", {"default_model": "from-home"})
    only = write(tmp_path / "only.json", {"default_model": "from-file"})
    assert load_config(only).default_model == "from-file"
    assert load_config(env={**os.environ, "HU_CONFIG_PATH": str(only)}).default_model == "from-file"


def test_explicit_path_that_does_not_exist_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist.*human config init"):
        load_config(tmp_path / "nope.json")


def test_invalid_json_names_file_line_and_column(tmp_path: Path):
    bad = write(tmp_path / "c.json", '{\n  "default_model": "x"\n  "max_tokens": 5\n}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    text = str(caught.value)
    assert str(bad) in text and "line 3, column 3" in text and '"max_tokens": 5' in text


def test_wrong_type_names_json_path_expected_and_found(tmp_path: Path):
    bad = write(tmp_path / "c.json", {"providers": [{"name": "groq", "base_url": 42}]})
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert "/providers/0/base_url" in str(caught.value)
    assert "expected string, found number 42" in str(caught.value)
    assert caught.value.pointer == "/providers/0/base_url"


def test_unknown_provider_suggests_close_names(tmp_path: Path):
    bad = write(tmp_path / "c.json", {"default_provider": "grok2", "default_model": "m"})
    with pytest.raises(UnknownProviderError) as caught:
        load_config(bad)
    assert "did you mean" in str(caught.value)
    assert "grok" in caught.value.suggestions


def test_empty_default_model_is_an_error(tmp_path: Path):
    bad = write(tmp_path / "c.json", {"default_model": ""})
    with pytest.raises(ConfigError, match="default_model"):
        load_config(bad)


@pytest.mark.parametrize("value", [-0.5, 2.5])
def test_temperature_outside_0_to_2_is_an_error(tmp_path: Path, value: float):
    bad = write(tmp_path / "c.json", {"default_temperature": value})
    with pytest.raises(ConfigError, match="default_temperature"):
        load_config(bad)


def test_temperature_zero_is_kept_as_zero(tmp_path: Path):
    good = write(tmp_path / "c.json", {"default_temperature": 0})
    assert load_config(good).temperature == 0.0


def test_unknown_key_warns_with_a_suggestion(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    file = write(tmp_path / "c.json", {"default_modle": "x"})
    with caplog.at_level(logging.WARNING, logger="human.config"):
        config = load_config(file)
    assert any("unknown key 'default_modle'" in w and "default_model" in w for w in config.warnings)
    assert "default_modle" in caplog.text


def test_strict_mode_turns_warnings_into_errors(tmp_path: Path):
    file = write(tmp_path / "c.json", {"default_modle": "x"})
    with pytest.raises(ConfigError, match="strict"):
        load_config(file, env={**os.environ, "HUMAN_STRICT_CONFIG": "1"})
    assert load_config(file, env={**os.environ, "HUMAN_STRICT_CONFIG": "0"}).warnings


def test_plain_http_to_a_remote_host_warns(tmp_path: Path):
    file = write(tmp_path / "c.json", {"providers": [{"name": "compatible", "base_url": "http://10.0.0.5:8000/v1"}]})
    assert any("plain http" in w for w in load_config(file).warnings)


def test_plain_http_to_loopback_does_not_warn(tmp_path: Path):
    file = write(tmp_path / "c.json", {"providers": [{"name": "compatible", "base_url": "http://127.0.0.1:8000/v1"}]})
    assert load_config(file).warnings == ()


def test_file_with_keys_readable_by_others_warns(tmp_path: Path):
    file = write(tmp_path / "c.json", {"api_key": "sk-secret-value-123"})
    os.chmod(file, 0o644)
    warnings = load_config(file).warnings
    assert any("chmod 600" in w for w in warnings)
    assert not any("sk-secret-value-123" in w for w in warnings)


def test_env_overrides_file(tmp_path: Path):
    file = write(tmp_path / "c.json", {"default_provider": "groq", "default_model": "a", "default_temperature": 1})
    env = {**os.environ, "HUMAN_PROVIDER": "mistral", "HUMAN_MODEL": "b", "HUMAN_TEMPERATURE": "0",
           "HUMAN_API_KEY": "sk-env"}
    config = load_config(file, env=env)
    assert (config.default_provider, config.default_model, config.temperature) == ("mistral", "b", 0.0)
    assert config.api_key is not None and config.api_key.reveal() == "sk-env"
    assert config.source_of("/default_model") == "env HUMAN_MODEL"


def test_bad_human_temperature_is_an_error():
    with pytest.raises(ConfigError, match="HUMAN_TEMPERATURE"):
        load_config(env={**os.environ, "HUMAN_TEMPERATURE": "hot"})


def test_reliability_section_is_read(tmp_path: Path):
    file = write(tmp_path / "c.json", {"reliability": {
        "provider_retries": 5, "provider_backoff_ms": 2000, "fallback_providers": ["groq"],
        "model_fallbacks": {"big": ["small"]}, "circuit_breaker": {"threshold": 2, "recovery_s": 5}}})
    reliability = load_config(file).reliability
    assert reliability.provider_retries == 5 and reliability.provider_backoff_ms == 2000
    assert reliability.fallback_providers == ("groq",)
    assert reliability.model_fallbacks == {"big": ("small",)}
    assert (reliability.breaker_threshold, reliability.breaker_recovery_s) == (2, 5.0)


def test_unknown_fallback_provider_is_an_error(tmp_path: Path):
    file = write(tmp_path / "c.json", {"reliability": {"fallback_providers": ["nosuch"]}})
    with pytest.raises(UnknownProviderError, match="fallback_providers"):
        load_config(file)


def test_provider_entry_without_name_is_an_error(tmp_path: Path):
    file = write(tmp_path / "c.json", {"providers": [{"base_url": "https://x/v1"}]})
    with pytest.raises(ConfigError, match="name"):
        load_config(file)


def test_config_that_is_not_an_object_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(write(tmp_path / "c.json", "[1, 2]"))


def test_oversized_file_is_an_error(tmp_path: Path):
    big = write(tmp_path / "c.json", '{"notes": "' + "x" * (1 << 20) + '"}')
    with pytest.raises(ConfigError, match="limit"):
        load_config(big)


def test_shipped_schema_is_valid_json_schema_and_agrees_with_examples():
    jsonschema.Draft202012Validator.check_schema(schema())
    good = {"default_provider": "groq", "default_model": "m", "max_tokens": 100,
            "providers": [{"name": "groq", "api_key": "k", "headers": {"a": "b"}, "timeouts": {"idle": None}}],
            "reliability": {"model_fallbacks": {"a": ["b"]}}}
    jsonschema.validate(good, schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"providers": [{"name": "x", "base_url": 1}]}, schema())


def test_mcp_servers_and_the_tool_fields_of_a_provider_entry_are_part_of_the_schema(tmp_path: Path):
    data = {"providers": [{"name": "local", "base_url": "http://127.0.0.1:8080/v1", "native_tools": False,
                           "reasoning_replay": "reasoning_content"}],
            "mcp_servers": {"files": {"command": "npx", "args": ["-y", "server"], "allow": ["read_*"],
                                      "prefix": "fs_", "timeout": 120},
                            "remote": {"url": "https://mcp.example.com/mcp", "token_env": "MCP_TOKEN"}}}
    jsonschema.validate(data, schema())
    config = load_config(write(tmp_path / "c.json", data), env={})
    assert config.warnings == ()
    assert config.mcp_servers["files"]["prefix"] == "fs_"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path / "bad.json", {"mcp_servers": {"files": {"command": "x", "timeout": "soon"}}}),
                    env={})
    assert caught.value.pointer == "/mcp_servers/files/timeout"
    with pytest.raises(ConfigError, match="reasoning_replay"):
        load_config(write(tmp_path / "bad2.json", {"providers": [{"name": "x", "base_url": "http://127.0.0.1/v1",
                                                                 "reasoning_replay": "thoughts"}]}), env={})
