"""Finds, loads and validates the JSON config, and applies the environment on top.

This is the only module that reads settings from the file system or `os.environ`
(the resolver in `resolve.py` receives the environment from here).

Where the config comes from, in order (later wins, key by key):

    1. built-in defaults
    2. ~/.human/config.json                      (the user's file)
    3. ./.human/config.json                      (the workspace's file)
       -- or, instead of 2 and 3, exactly one file: --config PATH, else $HU_CONFIG_PATH
    4. HUMAN_PROVIDER, HUMAN_MODEL, HUMAN_TEMPERATURE, HUMAN_API_KEY
    5. arguments (library keyword arguments, CLI flags)

Objects merge key by key; `providers[]` entries merge by `name` (a workspace entry may
override one field of a user entry); other arrays are replaced. Every value remembers
where it came from, so `human config show` can say which source won.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..core.schema import validate
from ..core.secret import Secret, key_problem, scrub
from ..errors import ConfigError
from .checks import check_base_url, check_provider_name

__all__ = ["Config", "Reliability", "load_config", "schema", "user_config_path"]

log = logging.getLogger("human.config")

MAX_CONFIG_BYTES = 1 << 20

DEFAULT_TEMPERATURE = None  # not sent unless configured: the server's default applies


@dataclass(frozen=True, slots=True)
class Reliability:
    provider_retries: int = 2
    provider_backoff_ms: int = 500
    max_backoff_ms: int = 30_000
    max_retry_after_ms: int = 60_000
    retry_budget_ms: int | None = None
    fallback_providers: tuple[str, ...] = ()
    model_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    breaker_threshold: int = 5
    breaker_recovery_s: float = 60.0


@dataclass(frozen=True)
class Config:
    """The merged, validated configuration. `sources` maps a JSON pointer to where its
    value came from ("~/.human/config.json", "env HUMAN_MODEL", ...)."""

    data: Mapping[str, Any]
    files: tuple[Path, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def default_provider(self) -> str | None:
        return self.data.get("default_provider")

    @property
    def default_model(self) -> str | None:
        return self.data.get("default_model")

    @property
    def temperature(self) -> float | None:
        value = self.data.get("default_temperature", DEFAULT_TEMPERATURE)
        return None if value is None else float(value)

    @property
    def max_tokens(self) -> int | None:
        return self.data.get("max_tokens")

    @property
    def api_key(self) -> Secret | None:
        value = self.data.get("api_key")
        return Secret(value, self.sources.get("/api_key", "")) if value else None

    def provider_entry(self, name: str) -> dict[str, Any] | None:
        """The `providers[]` entry named exactly `name` (first match wins)."""
        for entry in self.data.get("providers", ()):
            if entry.get("name") == name:
                found: dict[str, Any] = entry
                return found
        return None

    @property
    def entries(self) -> tuple[dict[str, Any], ...]:
        return tuple(self.data.get("providers", ()))

    @property
    def timeouts(self) -> Mapping[str, float | None]:
        timeouts: Mapping[str, float | None] = self.data.get("timeouts", {})
        return timeouts

    @property
    def mcp_servers(self) -> Mapping[str, Mapping[str, Any]]:
        """The `mcp_servers` section: name -> settings (agent/mcp.py builds servers from it)."""
        servers: Mapping[str, Mapping[str, Any]] = self.data.get("mcp_servers", {})
        return servers

    @property
    def limits(self) -> Mapping[str, int]:
        limits: Mapping[str, int] = self.data.get("limits", {})
        return limits

    @property
    def reliability(self) -> Reliability:
        section = self.data.get("reliability", {})
        breaker = section.get("circuit_breaker", {})
        defaults = Reliability()
        return Reliability(
            provider_retries=section.get("provider_retries", defaults.provider_retries),
            provider_backoff_ms=section.get("provider_backoff_ms", defaults.provider_backoff_ms),
            max_backoff_ms=section.get("max_backoff_ms", defaults.max_backoff_ms),
            max_retry_after_ms=section.get("max_retry_after_ms", defaults.max_retry_after_ms),
            retry_budget_ms=section.get("retry_budget_ms"),
            fallback_providers=tuple(section.get("fallback_providers", ())),
            model_fallbacks={k: tuple(v) for k, v in section.get("model_fallbacks", {}).items()},
            breaker_threshold=breaker.get("threshold", defaults.breaker_threshold),
            breaker_recovery_s=float(breaker.get("recovery_s", defaults.breaker_recovery_s)),
        )

    @property
    def log(self) -> bool:
        """Whether library clients log their exchanges (the "log" key; default off)."""
        return bool(self.data.get("log", False))

    @property
    def log_retention_days(self) -> float | None:
        """How many days of exchanges the log keeps (the "log_retention_days" key); None: all."""
        value = self.data.get("log_retention_days")
        return None if value is None else float(value)

    @property
    def prices(self) -> tuple[dict[str, Any], ...]:
        """The "prices" entries: per-model prices that win over the shipped data."""
        return tuple(self.data.get("prices", ()))

    def source_of(self, pointer: str) -> str:
        return self.sources.get(pointer, "default")


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the config file, as shipped in the package (a plain file read, as
    registry.py reads providers.json: `importlib.resources` alone costs ~7 ms to import)."""
    with open(os.path.join(os.path.dirname(__file__), "config.schema.json"), encoding="utf-8") as file:
        document: dict[str, Any] = json.load(file)
    return document


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".human" / "config.json"


def config_paths(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> tuple[list[Path], bool]:
    """The files to read, and whether they were named explicitly (then they must exist)."""
    chosen = path if path is not None else env.get("HU_CONFIG_PATH")
    if chosen:
        return [Path(chosen).expanduser()], True
    return [user_config_path(env), Path.cwd() / ".human" / "config.json"], False


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    strict: bool | None = None,
) -> Config:
    """Load and validate the config. Raises `ConfigError` with the file, the JSON
    pointer and what to do; never a bare traceback."""
    env = dict(os.environ if env is None else env)
    if strict is None:
        strict_flag = env.get("HUMAN_STRICT_CONFIG", "")
        strict = bool(strict_flag) and not strict_flag.startswith("0")
    paths, explicit = config_paths(path, env)
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    warnings: list[str] = []
    loaded: list[Path] = []
    for file in paths:
        document = _read_file(file, explicit)
        if document is None:
            continue
        loaded.append(file)
        label = _label(file, env)
        _check_schema(document, label, file, strict, warnings)
        _check_permissions(file, document, label, warnings)
        _merge(data, document, sources, label)
    _apply_env(data, sources, env)
    _check_semantics(data, sources, warnings)
    if strict and warnings:
        raise ConfigError(
            "strict config (HUMAN_STRICT_CONFIG) turns these warnings into errors:\n  "
            + "\n  ".join(warnings)
        )
    for message in warnings:
        log.warning("%s", message)
    return Config(data=data, files=tuple(loaded), sources=sources, warnings=tuple(warnings), env=env)


# ---- reading -----------------------------------------------------------------------


def _read_file(file: Path, explicit: bool) -> dict[str, Any] | None:
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        if explicit:
            raise ConfigError(
                f"config file {file} does not exist; create it with `human config init` "
                "or point --config / HU_CONFIG_PATH at an existing file",
                path=str(file),
            ) from None
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}", path=str(file)) from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {file} is {size} bytes; the limit is {MAX_CONFIG_BYTES} (is it the right file?)",
            path=str(file),
        )
    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {file} is not UTF-8 (byte {exc.start})", path=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}", path=str(file)) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        line = text.splitlines()[exc.lineno - 1] if text.splitlines() else ""
        raise ConfigError(
            f"{file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}\n"
            f"    {scrub(line.strip())[:120]}\n"
            "fix the JSON (a trailing comma or a missing quote is the usual cause)",
            path=str(file),
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"{file}: the config must be a JSON object {{...}}, found {type(document).__name__}",
            path=str(file),
            pointer="/",
        )
    return document


def _check_schema(document: dict[str, Any], label: str, file: Path, strict: bool, warnings: list[str]) -> None:
    errors = []
    for kind, pointer, message in validate(document, schema()):
        text = f"{label}: {pointer}: {scrub(message)}"
        if kind == "unknown-key":
            warnings.append(text + " (ignored)")
        else:
            errors.append((pointer, text))
    if errors:
        pointer, first = errors[0]
        more = "".join(f"\n  {text}" for _, text in errors[1:])
        raise ConfigError(first + more, path=str(file), pointer=pointer)


def _check_permissions(file: Path, document: dict[str, Any], label: str, warnings: list[str]) -> None:
    holds_keys = bool(document.get("api_key")) or any(
        isinstance(entry, dict) and entry.get("api_key") for entry in document.get("providers", ())
    )
    if not holds_keys or os.name != "posix":
        return
    mode = file.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.append(
            f"{label} holds API keys and is readable by other users; run: chmod 600 {file}"
        )


def _label(file: Path, env: Mapping[str, str]) -> str:
    home = env.get("HOME")
    text = str(file)
    if home and text.startswith(home.rstrip("/") + "/"):
        return "~" + text[len(home.rstrip("/")) :]
    return text


# ---- merging -----------------------------------------------------------------------


def _merge(into: dict[str, Any], document: dict[str, Any], sources: dict[str, str], label: str) -> None:
    for key, value in document.items():
        pointer = f"/{key}"
        if key == "providers":
            existing = {entry.get("name"): entry for entry in into.get("providers", [])}
            merged = list(into.get("providers", []))
            for entry in value:
                name = entry.get("name")
                if name in existing:
                    existing[name].update(entry)
                else:
                    copy = dict(entry)
                    merged.append(copy)
                    existing[name] = copy
                for field_name in entry:
                    sources[f"/providers/{name}/{field_name}"] = label
            into["providers"] = merged
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
            for sub in value:
                sources[f"{pointer}/{sub}"] = label
        else:
            into[key] = value
            if isinstance(value, dict):
                for sub in value:
                    sources[f"{pointer}/{sub}"] = label
        sources[pointer] = label


def _apply_env(data: dict[str, Any], sources: dict[str, str], env: Mapping[str, str]) -> None:
    for var, key in (("HUMAN_PROVIDER", "default_provider"), ("HUMAN_MODEL", "default_model")):
        value = env.get(var, "").strip()
        if value:
            data[key] = value
            sources[f"/{key}"] = f"env {var}"
    raw = env.get("HUMAN_TEMPERATURE", "").strip()
    if raw:
        try:
            temperature = float(raw)
        except ValueError:
            raise ConfigError(f"HUMAN_TEMPERATURE={raw!r} is not a number; use a value from 0 to 2") from None
        if not 0 <= temperature <= 2:
            raise ConfigError(f"HUMAN_TEMPERATURE={raw} is outside 0–2")
        data["default_temperature"] = temperature
        sources["/default_temperature"] = "env HUMAN_TEMPERATURE"
    key = env.get("HUMAN_API_KEY", "").strip()
    if key:
        data["api_key"] = key
        sources["/api_key"] = "env HUMAN_API_KEY"


def _check_semantics(data: dict[str, Any], sources: dict[str, str], warnings: list[str]) -> None:
    for key in ("default_provider", "default_model"):
        if key in data and not str(data[key]).strip():
            raise ConfigError(
                f"{sources.get('/' + key, 'config')}: {key} is empty; set it or remove the key",
                pointer=f"/{key}",
            )
    names = [entry.get("name") for entry in data.get("providers", ())]
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"/providers/{index}: every provider entry needs a non-empty \"name\"",
                pointer=f"/providers/{index}",
            )
    provider = data.get("default_provider")
    if provider:
        check_provider_name(provider, data, where=f"{sources.get('/default_provider')}: default_provider")
    for name in data.get("reliability", {}).get("fallback_providers", ()):
        check_provider_name(name, data, where="reliability.fallback_providers")
    keys = [("api_key", data.get("api_key"), sources.get("/api_key", "config"))]
    keys += [(f"providers[{entry.get('name')!r}].api_key", entry.get("api_key"),
              sources.get(f"/providers/{entry.get('name')}/api_key", "config")) for entry in data.get("providers", ())]
    for where, value, source in keys:
        problem = key_problem(value.strip()) if isinstance(value, str) else None
        if problem:
            raise ConfigError(f"{source}: {where} contains {problem}; keys are plain ASCII without spaces: "
                              "copy it again from the provider's console")
    for index, entry in enumerate(data.get("prices", ())):
        for key, value in entry.items():
            if key.endswith(("_mtok", "_kcount")) and not _is_amount(value):
                raise ConfigError(
                    f"{sources.get('/prices', 'config')}: prices[{index}].{key} is {value!r}; "
                    "give a price per million tokens (per thousand requests) in USD, e.g. 0.15 or \"0.15\"",
                    pointer=f"/prices/{index}/{key}",
                )
    for entry in data.get("providers", ()):
        url = entry.get("base_url")
        if url:
            problem = check_base_url(url)
            if problem:
                warnings.append(f"providers[{entry['name']!r}].base_url: {problem}")


def _is_amount(value: Any) -> bool:
    """A non-negative decimal number, as a JSON number or a string (exact)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return value >= 0 and value == value and value != float("inf")
    if isinstance(value, str):
        head, _, tail = value.strip().partition(".")
        return head.isdigit() and (tail == "" or tail.isdigit())
    return False
