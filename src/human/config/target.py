"""Decides exactly where a chat request goes: URL, headers, key, limits and timeouts.

Provider names (separate from the model; never split out of a model string):

    compatible            the generic provider; its base_url comes from a providers[] entry
                          named "compatible" (or an argument)
    custom:<url>          the URL is in the name; key and headers from a providers[] entry of
                          the same name, else the default provider's key (env or config)
    <registry name>       a row of providers.json (or one of its aliases); a providers[] entry
                          of the same name may override any field, base_url included
    <your own name>       a providers[] entry with a base_url defines a new provider

Anything else is an `UnknownProviderError` with suggestions: nothing is ever routed to a
provider or host the user did not name.

The URL rule (documented in README "Base URLs"): the base URL is used as written,
except that trailing slashes are dropped and "/chat/completions" is appended unless the
path already ends with it. "/v1" is never added (it is part of the base URL); a query
string in the base URL is kept and merged with the provider's own query parameters.

Key precedence, for provider P (first non-empty wins):

    1. the api_key argument (library only: keys never go on a command line)
    2. providers[P].api_key in the config, or the system keyring when the entry says
       "keyring": true (both written by `human keys set P`)
    3. the env var named by providers[P].api_key_env, else the registry's (e.g. GROQ_API_KEY)
    4. HUMAN_API_KEY           -- only when P is the default provider
    5. top-level "api_key"     -- only when P is the default provider

Steps 4 and 5 never apply to fallback providers, so a key is only sent to the host it
was configured for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._version import __version__
from ..core.proxy import UNSET, Network, proxy_rules
from ..core.secret import Secret, key_problem, mask
from ..errors import ConfigError, MissingCredentialError
from .checks import is_loopback, unknown_provider
from .load import Config
from .registry import ProviderRow, lookup

__all__ = ["Target", "Timeouts", "endpoint_url", "resolve"]

CHAT_PATH = "/chat/completions"
USER_AGENT = f"human/{__version__}"

# Hosts of Azure OpenAI: a `compatible` or `custom:` URL on them gets Azure's auth header
# and api-version, because that is what the product page's Azure example needs to work.
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; None switches one off. first_byte = until the response headers arrive,
    idle = longest silence between two reads of the body, total = the whole exchange."""

    connect: float | None = 10.0
    first_byte: float | None = 120.0
    idle: float | None = 60.0
    total: float | None = 600.0

    def merged(self, overrides: Mapping[str, float | None] | None) -> Timeouts:
        if not overrides:
            return self
        values = {name: getattr(self, name) for name in ("connect", "first_byte", "idle", "total")}
        values.update({k: v for k, v in overrides.items() if k in values})
        return Timeouts(**values)


CLOUD_TIMEOUTS = Timeouts()
# Local servers load models on first use and run slowly on CPUs: be generous.
LOCAL_TIMEOUTS = Timeouts(connect=5.0, first_byte=600.0, idle=300.0, total=None)


@dataclass(frozen=True, slots=True)
class Target:
    """Everything needed to send one request, and to explain it."""

    provider: str
    model: str
    url: str
    base_url: str
    key: Secret | None
    key_source: str
    auth: str = "bearer"
    headers: tuple[tuple[str, str], ...] = ()
    token_field: str = "max_tokens"
    stream_usage: bool = False
    structured_output: str | None = None  # registry / config hint for human.structured
    timeouts: Timeouts = CLOUD_TIMEOUTS
    temperature: float | None = None
    max_tokens: int | None = None
    local: bool = False
    row: ProviderRow | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()
    max_response_bytes: int = 16 << 20
    max_stream_bytes: int = 64 << 20
    network: Network = field(default_factory=Network)
    reasoning_replay: str | None = None  # registry flag: see ProviderRow / ChatResponse.to_message
    native_tools: bool | None = None  # providers[].native_tools: False = emulate tools (agent/emulate.py)

    def request_headers(self, *, stream: bool = False) -> dict[str, str]:
        """The real headers, key included: only the transport calls this."""
        headers = dict(self.headers)
        headers["Accept"] = "text/event-stream" if stream else "application/json"
        if self.key and self.auth == "bearer":
            headers["Authorization"] = "Bearer " + self.key.reveal()
        elif self.key and self.auth == "api-key":
            headers["api-key"] = self.key.reveal()
        return headers

    def display_headers(self, *, stream: bool = False) -> dict[str, str]:
        """The headers as they may be shown: every secret masked."""
        shown = {}
        for name, value in self.request_headers(stream=stream).items():
            if name == "Authorization" and self.key:
                shown[name] = "Bearer " + mask(self.key.reveal())
            elif _SECRET_HEADER.search(name):
                shown[name] = mask(value)
            else:
                shown[name] = value
        return shown

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from anything shown: the key and secret-looking headers."""
        values = [self.key.reveal()] if self.key else []
        values += [value for name, value in self.headers if _SECRET_HEADER.search(name)]
        return tuple(values)

    @property
    def models_url(self) -> str:
        parts = urlsplit(self.url)
        path = parts.path[: -len(CHAT_PATH)] if parts.path.endswith(CHAT_PATH) else parts.path
        return urlunsplit((parts.scheme, parts.netloc, path + "/models", parts.query, ""))


def endpoint_url(base_url: str, query: Mapping[str, str] | None = None) -> str:
    """Apply the URL rule (module docstring) to a base URL."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if not path.endswith(CHAT_PATH):
        path += CHAT_PATH
    params = dict(query or {})
    params.update(parse_qsl(parts.query, keep_blank_values=True))  # the URL's own win
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(params), ""))


def _validate_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL with a host, e.g. https://api.example.com/v1")
    if parts.username or parts.password:
        raise ConfigError(
            f"{where}: the URL holds credentials (user:password@); put the key in \"api_key\" instead, "
            "a URL ends up in logs"
        )
    if "{" in url or "}" in url:
        raise ConfigError(
            f"{where}: {url!r} still has a {{placeholder}}; set base_url in your providers[] entry "
            "to your own resource URL"
        )


def resolve(
    config: Config,
    provider: str | None = None,
    model: str | None = None,
    *,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    require_key: bool = True,
) -> Target:
    """Turn a provider name (default: the config's) and a model into a `Target`."""
    env = config.env
    name = provider or config.default_provider or ("compatible" if base_url else None)
    if not name:
        raise ConfigError(
            "no provider configured: run `human config init`, or set HUMAN_PROVIDER "
            "(e.g. HUMAN_PROVIDER=groq and GROQ_API_KEY), or write ~/.human/config.json "
            "with \"default_provider\" and \"default_model\""
        )
    chosen_model = model or config.default_model
    if not chosen_model:
        raise ConfigError(
            f"no model for provider {name!r}: set \"default_model\" in the config, "
            "HUMAN_MODEL, or pass --model"
        )
    is_default = name == (config.default_provider or name)
    entry = config.provider_entry(name) or {}
    notes: list[str] = []

    row: ProviderRow | None = None
    if name.startswith("custom:"):
        url = name[len("custom:") :]
        if not url:
            raise ConfigError("provider 'custom:' needs a URL after the colon, e.g. custom:https://host/v1")
        if entry.get("base_url") and entry["base_url"] != url:
            notes.append("base_url in the custom: entry is ignored: the URL is the provider name")
        chosen_base = base_url or url
    elif name == "compatible":
        chosen_base = base_url or entry.get("base_url") or ""
        if not chosen_base:
            raise ConfigError(
                "provider 'compatible' needs a base_url: add "
                '{"name": "compatible", "base_url": "https://your-server/v1"} to "providers"'
            )
    else:
        row = lookup(name)
        if row is not None and not entry:
            entry = _entry_for_row(config, row) or {}
        if row is None and not entry.get("base_url") and not base_url:
            unknown_provider(name, config.data, "provider")
        chosen_base = base_url or entry.get("base_url") or (row.base_url if row else "")
    _validate_url(chosen_base, f"provider {name!r} base_url")

    settings = _settings(row, entry)
    host = (urlsplit(chosen_base).hostname or "").lower()
    if row is None and host.endswith(_AZURE_HOSTS):
        azure = lookup("azure")
        if azure is not None:
            settings = {**_settings(azure, {}), **_entry_settings(entry)}
            notes.append("Azure OpenAI host: sending the key as an 'api-key' header with api-version")
    local = bool(settings.get("local")) or is_loopback(host)

    key, key_source = _pick_key(name, entry, settings, config, api_key, is_default, env)
    if key is None and settings.get("auth") != "none":
        needs = settings.get("requires_key", False) and not local
        if needs and require_key:
            var = entry.get("api_key_env") or settings.get("api_key_env")
            raise MissingCredentialError(
                f"provider {name!r} needs an API key; "
                + (f"set {var}, or " if var else "")
                + f"add \"api_key\" to its entry in \"providers\" (name {name!r})"
            )
    headers = [("Content-Type", "application/json"), ("User-Agent", USER_AGENT)]
    headers += list(settings.get("headers", {}).items())
    for header, value in headers:
        problem = _header_problem(value)
        if problem:
            raise ConfigError(f"provider {name!r}: header {header!r} {problem}; fix it in the config")
    timeouts = (LOCAL_TIMEOUTS if local else CLOUD_TIMEOUTS).merged(config.timeouts).merged(
        entry.get("timeouts")
    )
    url = endpoint_url(chosen_base, settings.get("query"))
    if key and key.reveal() in url:
        raise ConfigError(f"provider {name!r}: the API key appears in the base URL; remove it from the URL")
    limits = config.limits
    return Target(
        provider=name,
        model=chosen_model,
        url=url,
        base_url=chosen_base,
        key=key,
        key_source=key_source,
        auth=settings.get("auth", "bearer") if key else "none",
        headers=tuple(headers),
        token_field=settings.get("token_field", "max_tokens"),
        stream_usage=bool(settings.get("stream_usage", False)),
        structured_output=settings.get("structured_output"),
        timeouts=timeouts,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        local=local,
        row=row,
        notes=tuple(notes),
        max_response_bytes=limits.get("max_response_bytes", 16 << 20),
        max_stream_bytes=limits.get("max_stream_bytes", 64 << 20),
        network=_network(name, entry, config, headers),
        reasoning_replay=settings.get("reasoning_replay"),
        native_tools=entry.get("native_tools"),
    )


def _network(name: str, entry: Mapping[str, Any], config: Config, headers: list[tuple[str, str]]) -> Network:
    """Proxy rules, CA bundle and credential headers for one provider (README "Proxies
    and certificates"): the provider's entry wins over the top level, which wins over
    the environment; "proxy": null turns proxies off."""
    env = config.env
    if "proxy" in entry:
        rules = proxy_rules(entry["proxy"], env, where=f"providers[{name!r}].proxy")
    elif "proxy" in config.data:
        rules = proxy_rules(config.data["proxy"], env, where="proxy (top level)")
    else:
        rules = proxy_rules(UNSET, env)
    if entry.get("ca_bundle"):
        ca, ca_source = entry["ca_bundle"], f"providers[{name!r}].ca_bundle"
    elif config.data.get("ca_bundle"):
        ca, ca_source = config.data["ca_bundle"], "ca_bundle (top level)"
    elif env.get("SSL_CERT_FILE", "").strip():
        ca, ca_source = env["SSL_CERT_FILE"].strip(), "env SSL_CERT_FILE"
    else:
        ca, ca_source = None, "system"
    if ca is not None:
        ca = str(Path(ca).expanduser())
        if not Path(ca).is_file():
            raise ConfigError(f"{ca_source}: {ca!r} is not a file; point it at a PEM file of CA certificates")
    secret = {"authorization", "api-key", "proxy-authorization", "cookie"}
    secret.update(header.lower() for header, _ in headers if _SECRET_HEADER.search(header))
    return Network(proxy=rules, ca_bundle=ca, ca_source=ca_source, secret_headers=frozenset(secret))


def _header_problem(value: str) -> str | None:
    if any(c in value for c in "\r\n\0"):
        return "holds a line break or NUL"
    if not value.isascii():
        return "holds non-ASCII characters, which HTTP headers cannot carry"
    return None


def _checked(name: str, value: str, source: str) -> Secret:
    problem = key_problem(value)
    if problem:
        raise ConfigError(
            f"the API key for provider {name!r} (from {source}) contains {problem}; keys are plain ASCII "
            "without spaces: copy it again from the provider's console"
        )
    return Secret(value, source)


_ROW_SETTINGS = ("api_key_env", "requires_key", "local", "auth", "token_field", "stream_usage", "structured_output",
                 "reasoning_replay")


def _settings(row: ProviderRow | None, entry: Mapping[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if row is not None:
        settings = {name: getattr(row, name) for name in _ROW_SETTINGS}
        settings["headers"] = dict(row.headers)
        settings["query"] = dict(row.query)
    settings.update(_entry_settings(entry, settings))
    return settings


def _entry_settings(entry: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    base = base or {}
    out = {name: entry[name] for name in _ROW_SETTINGS if name in entry}
    if "headers" in entry:
        out["headers"] = {**base.get("headers", {}), **entry["headers"]}
    if "query" in entry:
        out["query"] = {**base.get("query", {}), **entry["query"]}
    return out


def _entry_for_row(config: Config, row: ProviderRow) -> dict[str, Any] | None:
    for alias in (row.name, *row.aliases):
        entry = config.provider_entry(alias)
        if entry:
            return entry
    return None


def _pick_key(
    name: str,
    entry: Mapping[str, Any],
    settings: Mapping[str, Any],
    config: Config,
    explicit: str | Secret | None,
    is_default: bool,
    env: Mapping[str, str],
) -> tuple[Secret | None, str]:
    if explicit:
        value = explicit.reveal() if isinstance(explicit, Secret) else explicit
        return _checked(name, value.strip(), "the api_key argument"), "argument"
    value = (entry.get("api_key") or "").strip()
    if value:
        where = config.sources.get(f"/providers/{entry.get('name')}/api_key", "config")
        source = f"providers[{entry.get('name')!r}].api_key in {where}"
        return _checked(name, value, source), source
    if entry.get("keyring"):
        from .keystore import read

        stored = read(str(entry.get("name")))
        if stored:
            source = f"system keyring (providers[{entry.get('name')!r}].keyring)"
            return _checked(name, stored.strip(), source), source
    var = settings.get("api_key_env")
    if var and env.get(var, "").strip():
        return _checked(name, env[var].strip(), f"env {var}"), f"env {var}"
    if is_default:
        top = config.api_key
        if top:
            source = config.source_of("/api_key")
            source = source if source.startswith("env") else f"top-level api_key in {source}"
            return _checked(name, top.reveal().strip(), source), source
    hint = f"(set {var} or add api_key)" if var else "(none configured)"
    return None, f"none {hint}"
