"""`human keys set | list | unset | path`: API keys, stored where resolution finds them.

    human keys set groq              asks for the key (hidden) in a terminal
    echo "$KEY" | human keys set groq --stdin
    human keys set groq --keyring    in the system keyring (the optional keyring extra)
    human keys list                  each provider with a key: masked, and its source
    human keys unset groq
    human keys path                  the file keys are written to

A key never appears in argv (no command takes one as an argument) or in output. Keys go
into the user's config file (`--config`, `$HU_CONFIG_PATH`, else ~/.human/config.json,
never the workspace's ./.human/config.json, which may be committed) as
`providers[P].api_key`, written atomically at mode 0600 in a 0700 directory; with
`--keyring` the key goes to the system keyring and the entry says `"keyring": true`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config import config_paths, keystore, load_config, resolve, user_config_path
from ..config.checks import check_provider_name
from ..config.registry import builtin_rows, lookup
from ..core.secret import mask
from ..errors import ConfigError
from .config import write_private
from .output import Output

__all__ = ["run"]


def run(args: argparse.Namespace, out: Output) -> int:
    action = {"set": set_key, "list": list_keys, "unset": unset_key, "path": path}[args.action]
    return action(args, out)


def keys_file(args: argparse.Namespace) -> Path:
    """The one file keys are written to: the explicit one, else the user's."""
    files, explicit = config_paths(args.config, os.environ)
    return files[0] if explicit else user_config_path()


def path(args: argparse.Namespace, out: Output) -> int:
    out.line(str(keys_file(args)))
    out.info("keys are stored as providers[NAME].api_key in this file (mode 0600); with --keyring, in the "
             f"system keyring under the service {keystore.SERVICE!r}")
    return 0


def set_key(args: argparse.Namespace, out: Output) -> int:
    provider = args.provider
    file = keys_file(args)
    document = _read(file)
    check_provider_name(provider, document, where="human keys set")
    key = _read_key(provider, args.stdin)
    out.add_secrets(key)
    entry = _entry(document, provider, create=True)
    assert entry is not None
    if args.keyring:
        keystore.store(entry["name"], key)
        entry.pop("api_key", None)
        entry["keyring"] = True
        where = f"the system keyring (service {keystore.SERVICE!r}); {file} marks it"
    else:
        if entry.pop("keyring", None):
            keystore.delete(entry["name"])
        entry["api_key"] = key
        where = f"{file} (readable by you only)"
    write_private(file, json.dumps(document, indent=2) + "\n")
    out.line(f"stored the key for {provider} in {where}")
    row = lookup(provider)
    if row is not None and row.api_key_env and os.environ.get(row.api_key_env):
        out.info(f"note: this key now takes precedence over ${row.api_key_env}")
    return 0


def unset_key(args: argparse.Namespace, out: Output) -> int:
    provider = args.provider
    file = keys_file(args)
    document = _read(file)
    entry = _entry(document, provider, create=False)
    removed = False
    if entry is not None:
        removed = entry.pop("api_key", None) is not None
        if entry.pop("keyring", None):
            removed = keystore.delete(entry["name"]) or removed
        if set(entry) == {"name"}:
            document["providers"] = [e for e in document.get("providers", []) if e is not entry]
            if not document["providers"]:
                del document["providers"]
    if removed:
        write_private(file, json.dumps(document, indent=2) + "\n")
        out.line(f"removed the key for {provider} from {file}")
    else:
        out.info(f"no key for {provider} is stored in {file}")
    row = lookup(provider)
    if row is not None and row.api_key_env and os.environ.get(row.api_key_env):
        out.info(f"note: ${row.api_key_env} is set in this shell and still provides a key")
    return 0


def list_keys(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    out.config = config
    names: list[str] = [str(entry["name"]) for entry in config.entries if entry.get("api_key") or entry.get("keyring")]
    names += [row.name for row in builtin_rows() if row.api_key_env and config.env.get(row.api_key_env)]
    if config.default_provider and (config.api_key or config.env.get("HUMAN_API_KEY")):
        names.append(config.default_provider)
    shown = 0
    for name in dict.fromkeys(names):
        try:
            target = resolve(config, name, "-", require_key=False)
        except ConfigError as exc:
            out.line(f"{name:<16} (cannot be read: {exc})")
            continue
        if target.key is None:
            continue
        out.add_secrets(target.key.reveal())
        out.line(f"{name:<16} {mask(target.key.reveal()):<22} {target.key_source}")
        shown += 1
    if not shown:
        out.info("no keys: store one with `human keys set PROVIDER`, or set the provider's variable "
                 "(e.g. GROQ_API_KEY)")
    return 0


# ---- helpers -----------------------------------------------------------------------------


def _read_key(provider: str, from_stdin: bool) -> str:
    if from_stdin:
        key = sys.stdin.readline().strip()
    elif sys.stdin is not None and sys.stdin.isatty():
        key = getpass.getpass(f"key for {provider} (typing is hidden): ").strip()
    else:
        raise ConfigError("no terminal to ask for the key in: pipe it in with --stdin "
                          "(keys are never taken as arguments)")
    if not key:
        raise ConfigError("no key given: nothing stored")
    if any(char.isspace() or not char.isprintable() for char in key):
        raise ConfigError(f"the key for {provider} holds spaces or control characters: paste it again")
    return key


def _read(file: Path) -> dict[str, Any]:
    """The file as written (not merged with others), or an empty document."""
    if not file.exists():
        return {}
    load_config(file)  # validates it, with the file, line and field in any error
    document: dict[str, Any] = json.loads(file.read_text("utf-8"))
    return document


def _entry(document: dict[str, Any], provider: str, *, create: bool) -> dict[str, Any] | None:
    """The providers[] entry the resolver would use for `provider` (a registry row's
    entry may be under one of its aliases)."""
    entries: list[dict[str, Any]] = document.setdefault("providers", []) if create else document.get("providers", [])
    row = lookup(provider)
    names = row.names if row is not None else (provider,)
    for name in (provider, *names):
        for entry in entries:
            if entry.get("name") == name:
                return entry
    if not create:
        return None
    entry = {"name": provider}
    entries.append(entry)
    return entry
