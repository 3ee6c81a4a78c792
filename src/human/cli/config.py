"""`human config init | show | validate | path`."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import Config, config_paths, load_config, resolve, user_config_path
from ..config.checks import check_provider_name
from ..config.registry import lookup
from ..core.secret import mask
from ..errors import ConfigError
from .output import Output


def run(args: argparse.Namespace, out: Output) -> int:
    return {"init": init, "show": show, "validate": validate, "path": path}[args.action](args, out)


def path(args: argparse.Namespace, out: Output) -> int:
    files, explicit = config_paths(args.config, os.environ)
    for file in files:
        out.line(f"{file}  ({'exists' if file.exists() else 'missing'})")
    if not explicit:
        out.info("the second file, if present, overrides the first key by key; "
                 "--config or HU_CONFIG_PATH selects one file instead")
    return 0


def validate(args: argparse.Namespace, out: Output) -> int:
    """Load the config and resolve every provider it names, so a config that loads but
    cannot work (no model, `compatible` without base_url, a URL without a scheme, a
    fallback that does not resolve) fails here rather than at the first chat."""
    config = load_config(args.config)
    out.config = config
    files = ", ".join(map(str, config.files)) or "no config file (defaults)"
    found = problems(config)
    for problem in found:
        out.error(f"error: {problem}")
    if found:
        out.info(f"{len(found)} problem{'s' if len(found) > 1 else ''} in {files}")
        return 2
    out.line(f"ok: {files}")
    if not config.default_provider:
        out.info("note: no default_provider: `human chat` will look for a local server on the default ports")
    return 0


def problems(config: Config) -> list[str]:
    """What keeps this config from working, one line each (empty: it can work)."""
    found: list[str] = []
    provider, model = config.default_provider, config.default_model
    if provider and not model:
        row = lookup(provider)
        hint = f" ({provider} documents {row.default_model})" if row is not None and row.default_model else ""
        found.append(f"default_provider is {provider!r} but there is no default_model: set it{hint}, "
                     "or every call needs --model / HUMAN_MODEL")
    names = [provider] if provider else []
    names += [str(entry.get("name")) for entry in config.entries]
    names += list(config.reliability.fallback_providers)
    for name in dict.fromkeys(names):
        try:
            resolve(config, name, model or "-", require_key=False)
        except ConfigError as exc:
            found.append(f"provider {name!r}: {exc}")
    return found


def show(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    data = json.loads(json.dumps(config.data))
    if data.get("api_key"):
        data["api_key"] = mask(data["api_key"])
    for entry in data.get("providers", []):
        if entry.get("api_key"):
            entry["api_key"] = mask(entry["api_key"])
    out.json(data)
    out.line("")
    out.line("sources:")
    for pointer in sorted(config.sources):
        out.line(f"  {pointer}  <-  {config.sources[pointer]}")
    return 0


def _ask(question: str, default: str | None = None) -> str:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{question}{suffix}: ").strip()
    return answer or (default or "")


def _ask_until(question: str, default: str | None, check: Callable[[str], str | None], out: Output) -> str:
    """Ask in the terminal until the answer passes `check` (which returns a problem or
    None): a wrong or empty answer is asked again, never an abort that loses the earlier
    answers. Ctrl-D (EOFError) still leaves."""
    while True:
        answer = _ask(question, default)
        problem = check(answer)
        if problem is None:
            return answer
        out.info(f"  {problem}")


def init(args: argparse.Namespace, out: Output) -> int:
    target = Path(args.config).expanduser() if args.config else (
        Path(os.environ["HU_CONFIG_PATH"]) if os.environ.get("HU_CONFIG_PATH") else user_config_path())
    if target.exists() and not args.force:
        raise ConfigError(f"{target} exists; use --force to overwrite it, or `human config show` to see it")
    interactive = sys.stdin is not None and sys.stdin.isatty() and not args.api_key_stdin

    def known(name: str) -> str | None:
        if not name:
            return "a provider is needed: `human providers` lists them"
        try:
            check_provider_name(name, {"providers": [{"name": name, "base_url": args.base_url}]
                                       if args.base_url else []}, where="provider")
        except ConfigError as exc:
            return str(exc)
        return None

    provider = args.provider or (_ask_until(
        "provider (e.g. openai, groq, ollama, compatible, custom:https://…/v1)", "openai", known, out)
        if interactive else None)
    if not provider:
        raise ConfigError("--provider is required when not run in a terminal")
    problem = known(provider)
    if problem:
        raise ConfigError(problem.replace("provider: ", "--provider: ", 1))
    base_url = args.base_url
    if provider == "compatible" and not base_url:
        base_url = _ask_until("base URL (e.g. http://localhost:8000/v1)", None, _url_problem, out) \
            if interactive else None
        if not base_url:
            raise ConfigError("provider 'compatible' needs --base-url")
    row = lookup(provider)
    suggested = row.default_model if row is not None else None
    model = args.model or (_ask_until(
        "model", suggested,
        lambda answer: None if answer else "a model is needed: `human models --provider "
                                           f"{provider}` lists what the server offers", out)
        if interactive else None)
    if not model:
        hint = f" (e.g. --model {suggested}, which {provider} documents)" if suggested else ""
        raise ConfigError(f"--model is required when not run in a terminal{hint}")
    key = None
    if args.api_key_stdin:
        key = sys.stdin.readline().strip() or None
    elif interactive and not args.api_key_env and (row is None or row.requires_key):
        hint = f" (or leave empty and set {row.api_key_env})" if row and row.api_key_env else ""
        key = getpass.getpass(f"API key{hint}: ").strip() or None
    entry: dict[str, Any] = {"name": provider}
    if base_url:
        entry["base_url"] = base_url
    if key:
        entry["api_key"] = key
    if args.api_key_env:
        entry["api_key_env"] = args.api_key_env
    document: dict[str, Any] = {"default_provider": provider, "default_model": model}
    if len(entry) > 1:
        document["providers"] = [entry]
    write_private(target, json.dumps(document, indent=2) + "\n")
    out.line(f"wrote {target} (readable by you only)")
    if row is not None and not key and row.api_key_env and not args.api_key_env and row.requires_key:
        out.info(f"set {row.api_key_env} in your environment, or store the key with `human keys set {provider}`")
    return 0


def _url_problem(url: str) -> str | None:
    if not url:
        return "a base URL is needed, e.g. http://localhost:8000/v1"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL with a host, e.g. http://localhost:8000/v1"
    return None


def write_private(target: Path, text: str) -> None:
    """Write `text` to `target` atomically, readable by the owner only (0600 in 0700)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_name(target.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
