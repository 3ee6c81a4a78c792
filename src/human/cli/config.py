"""`human config init | show | validate | path`."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config import config_paths, load_config, user_config_path
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
    config = load_config(args.config)
    for warning in config.warnings:
        out.info(f"warning: {warning}")
    files = ", ".join(map(str, config.files)) or "no config file (defaults)"
    out.line(f"ok: {files}")
    return 0


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
    for warning in config.warnings:
        out.info(f"warning: {warning}")
    return 0


def _ask(question: str, default: str | None = None) -> str:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{question}{suffix}: ").strip()
    return answer or (default or "")


def init(args: argparse.Namespace, out: Output) -> int:
    target = Path(args.config).expanduser() if args.config else (
        Path(os.environ["HU_CONFIG_PATH"]) if os.environ.get("HU_CONFIG_PATH") else user_config_path())
    if target.exists() and not args.force:
        raise ConfigError(f"{target} exists; use --force to overwrite it, or `human config show` to see it")
    interactive = sys.stdin is not None and sys.stdin.isatty() and not args.api_key_stdin
    provider = args.provider or (_ask("provider (e.g. openai, groq, ollama, compatible, custom:https://…/v1)",
                                      "openai") if interactive else None)
    if not provider:
        raise ConfigError("--provider is required when not run in a terminal")
    check_provider_name(provider, {"providers": [{"name": provider, "base_url": args.base_url}]
                                   if args.base_url else []}, where="--provider")
    base_url = args.base_url
    if provider == "compatible" and not base_url:
        base_url = _ask("base URL (e.g. http://localhost:8000/v1)") if interactive else None
        if not base_url:
            raise ConfigError("provider 'compatible' needs --base-url")
    model = args.model or (_ask("model", "gpt-4o-mini" if provider == "openai" else None) if interactive else None)
    if not model:
        raise ConfigError("--model is required when not run in a terminal")
    row = lookup(provider)
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
    _write_private(target, json.dumps(document, indent=2) + "\n")
    out.line(f"wrote {target} (readable by you only)")
    if row is not None and not key and row.api_key_env and not args.api_key_env:
        out.info(f"set {row.api_key_env} in your environment, or add \"api_key\" to the file")
    return 0


def _write_private(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_name(target.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
