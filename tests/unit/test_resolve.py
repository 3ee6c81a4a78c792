"""Provider resolution: which URL, headers and key a request goes to."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from human.config import load_config
from human.config.target import endpoint_url, resolve
from human.errors import ConfigError, MissingCredentialError, UnknownProviderError

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"


def config_from(tmp_path: Path, data: dict, **env: str):
    file = tmp_path / "config.json"
    file.write_text(json.dumps(data))
    os.chmod(file, 0o600)
    return load_config(file, env={**os.environ, **env})


# ---- the URL rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.example.com", "https://api.example.com/chat/completions"),
        ("https://api.example.com/", "https://api.example.com/chat/completions"),
        ("https://api.example.com/v1", "https://api.example.com/v1/chat/completions"),
        ("https://api.example.com/v1/", "https://api.example.com/v1/chat/completions"),
        ("https://api.example.com/v1//", "https://api.example.com/v1/chat/completions"),
        ("https://api.example.com/v1/chat/completions", "https://api.example.com/v1/chat/completions"),
        ("https://api.example.com/v1/chat/completions/", "https://api.example.com/v1/chat/completions"),
        ("https://api.example.com/v1?tenant=a", "https://api.example.com/v1/chat/completions?tenant=a"),
        ("http://localhost:4000", "http://localhost:4000/chat/completions"),
    ],
)
def test_url_rule(base: str, expected: str):
    assert endpoint_url(base) == expected


def test_url_rule_merges_provider_query_and_the_url_query_wins():
    url = endpoint_url("https://r.openai.azure.com/openai/deployments/d?api-version=2025-01-01",
                       {"api-version": "2024-10-21", "x": "1"})
    assert url == "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2025-01-01&x=1"


# ---- the five examples of the product page -------------------------------------------------


def test_page_example_compatible_with_base_url(tmp_path: Path):
    config = config_from(tmp_path, {
        "default_provider": "compatible", "default_model": "gpt-4o",
        "providers": [{"name": "compatible", "api_key": CANARY, "base_url": "https://your-api.example.com/v1"}]})
    target = resolve(config)
    assert target.url == "https://your-api.example.com/v1/chat/completions"
    assert target.model == "gpt-4o"
    assert target.request_headers()["Authorization"] == f"Bearer {CANARY}"


def test_page_example_custom_prefix(tmp_path: Path):
    name = "custom:https://your-api.example.com/v1"
    config = config_from(tmp_path, {"default_provider": name, "default_model": "gpt-4o",
                                    "providers": [{"name": name, "api_key": CANARY}]})
    target = resolve(config)
    assert target.url == "https://your-api.example.com/v1/chat/completions"
    assert target.request_headers()["Authorization"] == f"Bearer {CANARY}"


def test_page_example_litellm_proxy(tmp_path: Path):
    config = config_from(tmp_path, {
        "default_provider": "compatible", "default_model": "gpt-4o",
        "providers": [{"name": "compatible", "api_key": CANARY, "base_url": "http://localhost:4000"}]})
    target = resolve(config)
    assert target.url == "http://localhost:4000/chat/completions"
    assert target.local
    assert target.request_headers()["Authorization"] == f"Bearer {CANARY}"


def test_page_example_azure_deployment_gets_api_key_header_and_api_version(tmp_path: Path):
    config = config_from(tmp_path, {
        "providers": [{"name": "compatible", "api_key": CANARY,
                       "base_url": "https://your-resource.openai.azure.com/openai/deployments/your-deployment"}],
        "default_provider": "compatible", "default_model": "gpt-4o"})
    target = resolve(config)
    assert target.url.startswith(
        "https://your-resource.openai.azure.com/openai/deployments/your-deployment/chat/completions?api-version=")
    headers = target.request_headers()
    assert headers["api-key"] == CANARY
    assert "Authorization" not in headers
    assert any("Azure" in note for note in target.notes)


def test_page_example_self_hosted_proxy(tmp_path: Path):
    name = "custom:https://proxy.internal.company.com/openai/v1"
    config = config_from(tmp_path, {"default_provider": name, "default_model": "gpt-4o",
                                    "providers": [{"name": name, "api_key": "internal-token"}]})
    target = resolve(config)
    assert target.url == "https://proxy.internal.company.com/openai/v1/chat/completions"
    assert target.request_headers()["Authorization"] == "Bearer internal-token"


# ---- names -------------------------------------------------------------------------------


def test_registry_name_uses_its_corrected_default_url(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "groq", "default_model": "llama"}, GROQ_API_KEY=CANARY)
    target = resolve(config)
    assert target.url == "https://api.groq.com/openai/v1/chat/completions"
    assert target.key_source == "env GROQ_API_KEY"


def test_alias_resolves_like_its_row(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "grok", "default_model": "grok-4"}, XAI_API_KEY=CANARY)
    assert resolve(config).url == "https://api.x.ai/v1/chat/completions"


def test_registry_name_with_base_url_override(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "groq", "default_model": "m",
                                    "providers": [{"name": "groq", "api_key": "k", "base_url": "https://gw.example/groq/v1"}]})
    assert resolve(config).url == "https://gw.example/groq/v1/chat/completions"


def test_own_provider_name_with_base_url_is_allowed(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "office", "default_model": "m",
                                    "providers": [{"name": "office", "base_url": "https://llm.office.example/v1",
                                                   "headers": {"X-Team": "a"}}]})
    target = resolve(config)
    assert target.url == "https://llm.office.example/v1/chat/completions"
    assert target.request_headers()["X-Team"] == "a"


def test_unknown_provider_is_never_routed_elsewhere(tmp_path: Path):
    config = config_from(tmp_path, {"default_model": "m"})
    with pytest.raises(UnknownProviderError, match="did you mean"):
        resolve(config, "openrouterr")


def test_wrong_case_is_not_silently_accepted(tmp_path: Path):
    config = config_from(tmp_path, {"default_model": "m"})
    with pytest.raises(UnknownProviderError) as caught:
        resolve(config, "OpenAI")
    assert "openai" in caught.value.suggestions


def test_compatible_without_base_url_says_how_to_fix(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "compatible", "default_model": "m"})
    with pytest.raises(ConfigError, match='"base_url"'):
        resolve(config)


def test_no_provider_configured_says_how_to_configure(tmp_path: Path):
    config = config_from(tmp_path, {})
    with pytest.raises(ConfigError, match="human config init"):
        resolve(config, model="m")


def test_no_model_says_how_to_set_one(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "ollama"})
    with pytest.raises(ConfigError, match="default_model"):
        resolve(config)


def test_model_string_is_untouched(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "ollama", "default_model": "openai/gpt-4o:free"})
    assert resolve(config).model == "openai/gpt-4o:free"


# ---- keys --------------------------------------------------------------------------------


def test_local_provider_without_key_sends_no_authorization(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "ollama", "default_model": "llama3.2"})
    target = resolve(config)
    assert target.url == "http://localhost:11434/v1/chat/completions"
    assert "Authorization" not in target.request_headers()
    assert target.key is None


def test_compatible_without_key_sends_no_authorization(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "compatible", "default_model": "m",
                                    "providers": [{"name": "compatible", "base_url": "http://127.0.0.1:8080/v1"}]})
    assert "Authorization" not in resolve(config).request_headers()


def test_cloud_provider_without_key_names_the_env_var(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "groq", "default_model": "m"})
    with pytest.raises(MissingCredentialError, match="GROQ_API_KEY"):
        resolve(config)


def test_key_precedence_entry_then_env_then_human_api_key_then_top_level(tmp_path: Path):
    base = {"default_provider": "groq", "default_model": "m", "api_key": "top"}
    with_entry = {**base, "providers": [{"name": "groq", "api_key": "entry"}]}
    assert resolve(config_from(tmp_path, with_entry, GROQ_API_KEY="env", HUMAN_API_KEY="human")).key.reveal() == "entry"
    assert resolve(config_from(tmp_path, base, GROQ_API_KEY="env", HUMAN_API_KEY="human")).key.reveal() == "env"
    assert resolve(config_from(tmp_path, base, HUMAN_API_KEY="human")).key.reveal() == "human"
    target = resolve(config_from(tmp_path, base))
    assert target.key.reveal() == "top"
    assert "top-level api_key" in target.key_source


def test_api_key_env_in_entry_names_the_variable(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "compatible", "default_model": "m",
                                    "providers": [{"name": "compatible", "base_url": "https://x.example/v1",
                                                   "api_key_env": "MY_GATEWAY_API_KEY"}]},
                         MY_GATEWAY_API_KEY=CANARY)
    target = resolve(config)
    assert target.key.reveal() == CANARY and target.key_source == "env MY_GATEWAY_API_KEY"


def test_global_key_is_never_sent_to_a_provider_that_is_not_the_default(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "compatible", "default_model": "m", "api_key": CANARY,
                                    "providers": [{"name": "compatible", "base_url": "https://a.example/v1"}],
                                    "reliability": {"fallback_providers": ["ollama"]}})
    assert resolve(config).key.reveal() == CANARY
    fallback = resolve(config, "ollama")
    assert fallback.key is None
    assert CANARY not in json.dumps(fallback.request_headers())


def test_key_is_masked_in_repr_and_display(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "groq", "default_model": "m"}, GROQ_API_KEY=CANARY)
    target = resolve(config)
    assert CANARY not in repr(target)
    assert CANARY not in str(target.display_headers())
    assert CANARY not in f"{target.key}"


def test_key_inside_the_url_is_refused(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "compatible", "default_model": "m",
                                    "providers": [{"name": "compatible", "api_key": CANARY,
                                                   "base_url": f"https://x.example/v1?key={CANARY}"}]})
    with pytest.raises(ConfigError) as caught:
        resolve(config)
    assert CANARY not in str(caught.value)


def test_credentials_in_url_are_refused(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "compatible", "default_model": "m",
                                    "providers": [{"name": "compatible", "base_url": "https://u:p@x.example/v1"}]})
    with pytest.raises(ConfigError, match="credentials"):
        resolve(config)


def test_placeholder_url_must_be_filled(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "azure", "default_model": "m"}, AZURE_OPENAI_API_KEY="k")
    with pytest.raises(ConfigError, match="placeholder"):
        resolve(config)


def test_openrouter_sends_attribution_headers(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "openrouter", "default_model": "m"},
                         OPENROUTER_API_KEY=CANARY)
    headers = resolve(config).request_headers()
    assert "HTTP-Referer" in headers and "X-Title" in headers


def test_timeouts_are_generous_for_local_servers_and_overridable(tmp_path: Path):
    config = config_from(tmp_path, {"default_provider": "ollama", "default_model": "m",
                                    "providers": [{"name": "ollama", "timeouts": {"idle": 42}}]})
    target = resolve(config)
    assert target.timeouts.idle == 42
    assert target.timeouts.first_byte >= 600
