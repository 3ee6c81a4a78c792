"""What the gateway serves and how, read once from the same config file as the client:
the `routes` section (which model ids callers may send, and where each goes) and the
`gateway` section (where it listens; where its keys, shared limits and usage rows live).

The grammar of a model id (house-style.md: "where one string is unavoidable, define the
grammar"): an id in `routes.models` is `provider/model`, split at the *first* "/": the
provider name holds no "/", the model may (`openrouter/meta-llama/llama-3.1-8b` is
provider `openrouter`, model `meta-llama/llama-3.1-8b`; `ollama/llama3:8b` keeps its
colon). A provider whose name holds a "/" (`custom:https://host/v1`) is reached through
an alias written as an object. The ids a caller may send are exactly the ids listed, so
`GET /v1/models` can list exactly what chat accepts (decolua/9router#1512, litellm#2837).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from .keys import KeyFile, KeyStore

__all__ = ["DEFAULT_BODY_TIMEOUT_S", "DEFAULT_MAX_BODY", "Route", "Settings", "open_keys", "routes_from",
           "settings_from", "split_id"]

DEFAULT_MAX_BODY = 8 << 20
DEFAULT_BODY_TIMEOUT_S = 30.0  # to receive a request's body once its headers are in: a slow caller's limit
KEYS_FILE = "gateway-keys.json"


@dataclass(frozen=True, slots=True)
class Route:
    """One id a caller may send: it goes to `provider`, as `model`."""

    id: str
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = DEFAULT_MAX_BODY
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    keys_file: Path | None = None
    keys_store: str = "file"  # or "database": the keys in database_url's PostgreSQL (dbkeys.py)
    redis_url: str | None = None
    redis_failure: str = "open"
    database_url: str | None = None
    log: bool = True
    log_path: Path | None = None


def split_id(model_id: str) -> tuple[str, str]:
    """`provider/model` -> (provider, model), split at the first "/" (module docstring)."""
    provider, slash, model = model_id.partition("/")
    if not slash or not provider or not model:
        raise ConfigError(f"route {model_id!r} is not of the form provider/model")
    return provider, model


def routes_from(config: Config) -> dict[str, Route]:
    """Id -> Route from the `routes` section. Without one, the default provider's default
    model is served under the model's own name (a quick start); with neither, an error."""
    section: Mapping[str, Any] = config.data.get("routes") or {}
    routes: dict[str, Route] = {}
    for model_id in section.get("models", ()):
        provider, model = split_id(model_id)
        if model_id in routes:
            raise ConfigError(f"routes.models lists {model_id!r} twice; remove one")
        routes[model_id] = Route(model_id, provider, model)
    for alias, to in (section.get("aliases") or {}).items():
        if alias in routes:
            raise ConfigError(f"routes: {alias!r} is both in routes.models and routes.aliases; an id must mean "
                              "one thing: rename the alias")
        if isinstance(to, str):
            provider, model = split_id(to)
        else:
            provider, model = to["provider"], to["model"]
        routes[alias] = Route(alias, provider, model)
    if not routes:
        default_provider, default_model = config.default_provider, config.default_model
        if not default_provider or not default_model:
            raise ConfigError(
                "the gateway has nothing to serve: add a \"routes\" section to the config, e.g. "
                '{"routes": {"models": ["groq/llama-3.1-8b-instant"], "aliases": {"fast": '
                '"groq/llama-3.1-8b-instant"}}}, or set default_provider and default_model')
        routes[default_model] = Route(default_model, default_provider, default_model)
    return routes


def settings_from(config: Config, *, host: str | None = None, port: int | None = None) -> Settings:
    """The `gateway` section, with the command line's host and port on top."""
    section: Mapping[str, Any] = config.data.get("gateway") or {}
    keys_file = section.get("keys_file")
    log_path = section.get("log_path")
    keys_store = section.get("keys_store", "file")
    if keys_store not in ("file", "database"):
        raise ConfigError(f'gateway.keys_store is "file" or "database", not {keys_store!r}')
    if keys_store == "database" and not section.get("database_url"):
        raise ConfigError('gateway.keys_store "database" keeps the keys in gateway.database_url\'s PostgreSQL: '
                          'set database_url too, or use "keys_store": "file"')
    return Settings(
        host=host or section.get("host") or "127.0.0.1",
        port=section.get("port", 8000) if port is None else port,
        max_body_bytes=section.get("max_body_bytes", DEFAULT_MAX_BODY),
        body_timeout_s=float(section.get("body_timeout_s", DEFAULT_BODY_TIMEOUT_S)),
        keys_file=Path(keys_file).expanduser() if keys_file else default_keys_file(config.env),
        keys_store=keys_store,
        redis_url=section.get("redis_url") or None,
        redis_failure=section.get("redis_failure", "open"),
        database_url=section.get("database_url") or None,
        log=section.get("log", True),
        log_path=Path(log_path).expanduser() if log_path else None,
    )


def open_keys(settings: Settings) -> KeyStore | None:
    """Where these settings keep the gateway's keys (`keys_store`): the keys file, or the
    PostgreSQL of `database_url` (`dbkeys.py`, which needs psycopg: imported only then)."""
    if settings.keys_store == "database":
        from .dbkeys import DatabaseKeys

        assert settings.database_url is not None  # settings_from made sure
        return DatabaseKeys(settings.database_url)
    return KeyFile(settings.keys_file) if settings.keys_file is not None else None


def default_keys_file(env: Mapping[str, str] | None = None) -> Path:
    """Beside the capability profiles: `$HU_STATE_DIR`, else `~/.human/state/`."""
    from ..profile import state_dir

    return state_dir(dict(os.environ if env is None else env)) / KEYS_FILE
