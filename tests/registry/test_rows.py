"""Every built-in registry row is valid, and the registry keeps the reference's names."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from types import MappingProxyType
from urllib.parse import urlsplit

import pytest

from human.config.registry import (
    OPTIONAL_ROW_FIELDS,
    ROW_FIELDS,
    ProviderRow,
    builtin_rows,
    lookup,
    row_from_mapping,
    suggest,
)
from human.errors import ConfigError

# Every name of the reference program's compatible-provider table ([Mar], 88 names), exactly
# as seed-system.md section 1.3 lists them (case-sensitive), grouped by row.
REFERENCE_NAMES = (
    "groq", "mistral", "deepseek", "xai", "grok", "cerebras", "perplexity", "cohere", "venice",
    "vercel", "vercel-ai", "together", "together-ai", "fireworks", "fireworks-ai", "huggingface",
    "aihubmix", "siliconflow", "shengsuanyun", "chutes", "synthetic", "opencode", "opencode-zen",
    "astrai", "poe",
    "moonshot", "kimi", "moonshot-cn", "kimi-cn",
    "glm", "zhipu", "glm-global", "zhipu-global",
    "zai", "z.ai", "zai-global", "z.ai-global",
    "minimax", "minimax-intl", "minimax-io", "minimax-global",
    "qwen", "dashscope", "qianfan", "baidu", "doubao", "volcengine", "ark",
    "glm-cn", "zhipu-cn", "bigmodel", "zai-cn", "z.ai-cn", "minimax-cn", "minimaxi",
    "moonshot-intl", "moonshot-global", "kimi-intl", "kimi-global",
    "qwen-intl", "dashscope-intl", "qwen-us", "dashscope-us", "byteplus",
    "kimi-code", "kimi_coding", "volcengine-plan", "byteplus-plan", "qwen-portal",
    "bedrock", "aws-bedrock", "cloudflare", "cloudflare-ai", "copilot", "github-copilot",
    "nvidia", "nvidia-nim", "build.nvidia.com", "ovhcloud", "ovh",
    "lmstudio", "lm-studio", "vllm", "llamacpp", "llama.cpp", "sglang", "osaurus", "litellm",
)
MLX_NAMES = ("mlx-local", "mlx_local", "mlx-http", "mlx_http")
OUR_ADDITIONS = ("openai", "openrouter", "azure", "azure-openai", "ollama")

# Vendors whose own docs name a key variable that is not <NAME>_API_KEY.
DOCUMENTED_ENV_EXCEPTIONS = {
    "huggingface": "HF_TOKEN",
    "bedrock": "AWS_BEARER_TOKEN_BEDROCK",
    "ovhcloud": "OVH_AI_ENDPOINTS_ACCESS_TOKEN",
}
ENV_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*_API_KEY$")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")

# Rows whose reference default was wrong and that we corrected; each must say so.
CORRECTED = {
    "groq": "https://api.groq.com/openai/v1",
    "xai": "https://api.x.ai/v1",
    "together": "https://api.together.ai/v1",
    "venice": "https://api.venice.ai/api/v1",
    "cohere": "https://api.cohere.ai/compatibility/v1",
    "qianfan": "https://qianfan.baidubce.com/v2",
    "chutes": "https://llm.chutes.ai/v1",
}

ROWS = builtin_rows()
ROW_IDS = [row.name for row in ROWS]


def raw_rows() -> list[dict]:
    document = json.loads(files("human.config").joinpath("providers.json").read_text(encoding="utf-8"))
    return document["providers"]


def a_valid_row(**changes: object) -> dict:
    row = {
        "name": "example", "aliases": [], "base_url": "https://api.example.test/v1",
        "api_key_env": "EXAMPLE_API_KEY", "requires_key": True, "local": False, "auth": "bearer",
        "headers": {}, "query": {}, "token_field": "max_tokens", "stream_usage": False,
        "structured_output": None, "docs_url": "https://docs.example.test", "source": "test",
        "reference_base_url": None, "notes": "", "default_model": None, "default_model_source": "",
    }
    row.update(changes)
    return row


# ---- shape -------------------------------------------------------------------------------


def test_the_file_is_versioned_and_every_row_has_exactly_the_row_fields():
    document = json.loads(files("human.config").joinpath("providers.json").read_text(encoding="utf-8"))
    assert document["version"] == 1
    for raw in document["providers"]:
        assert tuple(key for key in raw if key in ROW_FIELDS) == ROW_FIELDS, raw["name"]
        assert set(raw) - set(ROW_FIELDS) <= set(OPTIONAL_ROW_FIELDS), raw["name"]


@pytest.mark.parametrize("index", range(len(raw_rows())))
def test_every_row_validates_through_the_strict_loader(index: int):
    raw = raw_rows()[index]
    row = row_from_mapping(raw, where=f"providers[{index}]")
    assert isinstance(row, ProviderRow) and row.name == raw["name"]


def test_names_and_aliases_are_unique_across_the_file():
    names = [name for row in ROWS for name in row.names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert duplicates == []
    assert len(names) == len(REFERENCE_NAMES) + len(MLX_NAMES) + len(OUR_ADDITIONS)


def test_all_88_reference_names_are_present():
    assert len(REFERENCE_NAMES) == 88 == len(set(REFERENCE_NAMES))
    missing = [name for name in REFERENCE_NAMES if lookup(name) is None]
    assert missing == []


def test_the_four_mlx_names_are_one_row_and_bare_mlx_is_not_a_name():
    rows = {lookup(name) for name in MLX_NAMES}
    assert len(rows) == 1 and next(iter(rows)).name == "mlx-local"
    assert lookup("mlx") is None


def test_compatible_is_not_a_row_the_resolver_handles_it():
    assert lookup("compatible") is None


def test_our_additions_are_present():
    assert lookup("openai").base_url == "https://api.openai.com/v1"
    assert lookup("openrouter").base_url == "https://openrouter.ai/api/v1"
    assert lookup("ollama").base_url == "http://localhost:11434/v1"
    assert lookup("azure-openai") is lookup("azure")


# ---- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_base_url_has_no_trailing_slash_and_no_endpoint_path(row: ProviderRow):
    assert not row.base_url.endswith("/")
    assert not row.base_url.rstrip("/").endswith("/chat/completions")
    assert "?" not in row.base_url, "query parameters belong in the row's query"


@pytest.mark.parametrize("row", [r for r in ROWS if not r.local], ids=[r.name for r in ROWS if not r.local])
def test_cloud_rows_use_https(row: ProviderRow):
    assert urlsplit(row.base_url).scheme == "https"


@pytest.mark.parametrize("row", [r for r in ROWS if r.local], ids=[r.name for r in ROWS if r.local])
def test_local_rows_use_plain_http_on_loopback_and_need_no_key(row: ProviderRow):
    parts = urlsplit(row.base_url)
    assert parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    assert row.requires_key is False


def test_the_local_servers_are_marked_local():
    for name in ("ollama", "lmstudio", "vllm", "sglang", "llamacpp", "osaurus", "litellm", "mlx-local"):
        assert lookup(name).local, name


def test_placeholders_only_where_a_per_user_url_is_unavoidable_and_the_notes_say_so():
    with_placeholders = {row.name for row in ROWS if row.needs_base_url}
    assert with_placeholders == {"azure", "cloudflare"}
    for name in with_placeholders:
        assert "set base_url" in lookup(name).notes


@pytest.mark.parametrize("name,url", sorted(CORRECTED.items()))
def test_corrected_rows_differ_from_the_reference_and_record_it(name: str, url: str):
    row = lookup(name)
    assert row.base_url == url
    assert row.reference_base_url is not None and row.reference_base_url != row.base_url


def test_reference_base_url_is_set_only_when_it_differs():
    for row in ROWS:
        assert row.reference_base_url != row.base_url, row.name


# ---- keys and quirks ---------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_api_key_env_follows_the_naming_convention_or_a_documented_exception(row: ProviderRow):
    if row.api_key_env is None:
        return
    if row.name in DOCUMENTED_ENV_EXCEPTIONS:
        assert row.api_key_env == DOCUMENTED_ENV_EXCEPTIONS[row.name]
    else:
        assert ENV_PATTERN.match(row.api_key_env), row.api_key_env


def test_well_known_vendors_use_their_documented_variable():
    expected = {"groq": "GROQ_API_KEY", "mistral": "MISTRAL_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
                "together": "TOGETHER_API_KEY", "fireworks": "FIREWORKS_API_KEY",
                "openrouter": "OPENROUTER_API_KEY", "xai": "XAI_API_KEY", "openai": "OPENAI_API_KEY"}
    assert {name: lookup(name).api_key_env for name in expected} == expected


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_every_row_says_how_its_url_was_verified(row: ProviderRow):
    assert row.source.strip()
    assert row.docs_url.startswith("https://")


def test_openai_and_azure_take_max_completion_tokens_and_mistral_takes_max_tokens():
    assert lookup("openai").token_field == "max_completion_tokens"
    assert lookup("azure").token_field == "max_completion_tokens"
    assert lookup("mistral").token_field == "max_tokens"


def test_providers_known_to_reject_stream_options_do_not_get_it():
    assert not lookup("mistral").stream_usage
    assert not lookup("cohere").stream_usage


def test_azure_sends_an_api_key_header_and_a_ga_api_version():
    azure = lookup("azure")
    assert azure.auth == "api-key"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", azure.query["api-version"])


def test_openrouter_carries_its_attribution_headers():
    headers = lookup("openrouter").headers
    assert headers["HTTP-Referer"] == "https://github.com/human-ai/human"
    assert headers["X-Title"] == "human"


def test_rows_are_immutable():
    row = lookup("openrouter")
    with pytest.raises(AttributeError):
        row.base_url = "https://evil.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        row.headers["X-Title"] = "other"  # type: ignore[index]
    assert isinstance(row.query, MappingProxyType)
    assert hash(row) == hash(lookup("openrouter"))


# ---- lookup and suggest ------------------------------------------------------------------


def test_lookup_by_alias_returns_the_canonical_row():
    assert lookup("grok").name == "xai"
    assert lookup("z.ai").name == "zai"
    assert lookup("build.nvidia.com").name == "nvidia"
    assert lookup("kimi_coding") is lookup("kimi-code")


def test_lookup_is_case_sensitive_and_unknown_names_give_none():
    assert lookup("Groq") is None
    assert lookup("nope") is None


def test_builtin_rows_are_parsed_once():
    assert builtin_rows() is builtin_rows()


def test_suggest_finds_near_misses_case_insensitively():
    assert suggest("Groq")[0] == "groq"
    assert "grok" in suggest("grok2")
    assert suggest("openrouterr")[0] == "openrouter"
    assert len(suggest("g", limit=2)) <= 2


def test_suggest_offers_nothing_for_unrelated_text():
    assert suggest("zzzzzzzzzzzz") == ()


# ---- the strict loader -------------------------------------------------------------------


def test_row_from_mapping_rejects_an_unknown_field_and_names_it():
    with pytest.raises(ConfigError) as caught:
        row_from_mapping(a_valid_row(base_ulr="https://typo.example"), where="providers[0]")
    message = str(caught.value)
    assert message.startswith("providers[0]: ") and "'base_ulr'" in message


def test_row_from_mapping_rejects_a_wrong_type_naming_field_expected_and_found():
    with pytest.raises(ConfigError) as caught:
        row_from_mapping(a_valid_row(requires_key="yes"), where="my config")
    message = str(caught.value)
    assert "my config" in message and "'requires_key'" in message
    assert "expected true or false" in message and "'yes'" in message


def test_row_from_mapping_does_not_take_1_for_true():
    with pytest.raises(ConfigError, match="stream_usage"):
        row_from_mapping(a_valid_row(stream_usage=1), where="row")


def test_row_from_mapping_rejects_a_missing_field():
    data = a_valid_row()
    del data["notes"]
    with pytest.raises(ConfigError, match="missing field 'notes'"):
        row_from_mapping(data, where="row")


@pytest.mark.parametrize(
    "change,field",
    [
        ({"auth": "basic"}, "auth"),
        ({"token_field": "max_output_tokens"}, "token_field"),
        ({"structured_output": "json"}, "structured_output"),
        ({"headers": {"X-Count": 1}}, "headers"),
        ({"query": ["api-version"]}, "query"),
        ({"aliases": "grok"}, "aliases"),
        ({"base_url": "ftp://example.test"}, "base_url"),
        ({"api_key_env": "NOT A NAME"}, "api_key_env"),
        ({"reference_base_url": ""}, "reference_base_url"),
        ({"default_model": ""}, "default_model"),
        ({"default_model": "m-1", "default_model_source": ""}, "default_model_source"),
    ],
)
def test_row_from_mapping_rejects_bad_values_naming_the_field(change: dict, field: str):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        row_from_mapping(a_valid_row(**change), where="row")


def test_needs_base_url_detects_placeholders():
    assert row_from_mapping(a_valid_row(base_url="https://{resource}.example.test/v1"), where="row").needs_base_url
    assert not row_from_mapping(a_valid_row(), where="row").needs_base_url


def test_a_documented_default_model_carries_its_source():
    """Rows with a default_model say which vendor page documents it (issue 11)."""
    rows = [row for row in ROWS if row.default_model is not None]
    assert rows, "the registry should name a default model where vendors document one"
    for row in rows:
        assert row.default_model.strip() == row.default_model
        assert "http" in row.default_model_source, row.name
    assert all(row.default_model is None for row in ROWS if row.local)  # a local server has no fixed model


# ---- optional fields -----------------------------------------------------------------------


def test_reasoning_replay_is_set_only_on_the_rows_whose_servers_need_it():
    flagged = {row.name: row.reasoning_replay for row in ROWS if row.reasoning_replay}
    assert flagged == dict.fromkeys(["deepseek", "moonshot", "kimi-code", "moonshot-intl"], "reasoning_content")
    assert lookup("groq").reasoning_replay is None  # Groq rejects unknown message fields


def test_an_optional_field_may_be_left_out_and_is_checked_when_present():
    assert row_from_mapping(a_valid_row(), where="r").reasoning_replay is None
    assert row_from_mapping(a_valid_row(reasoning_replay="reasoning"), where="r").reasoning_replay == "reasoning"
    with pytest.raises(ConfigError, match="reasoning_replay.*'reasoning_content', 'reasoning'"):
        row_from_mapping(a_valid_row(reasoning_replay="thinking"), where="r")
