"""`human chat`: one prompt (streamed to stdout), a piped file, or an interactive chat."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..client import Client
from ..config import load_config
from ..types import system, user
from .output import Output
from .turn import ask


def run(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    _collect_secrets(config, out)
    for warning in config.warnings:
        out.info(f"human: warning: {warning}")
    prompt = " ".join(args.prompt).strip()
    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    if piped:
        prompt = f"{prompt}\n\n{piped}" if prompt else piped
    client = Client(provider=args.provider, model=args.model, config=config,
                    timeout=args.timeout)
    with client:
        if not prompt:
            if piped is None and sys.stdin is not None and sys.stdin.isatty():
                from .interactive import repl  # readline is loaded only for a terminal chat

                return repl(client, args, out)
            out.info("human: error: no prompt: give one as an argument or pipe text in")
            return 2
        messages = _messages(args, prompt)
        options = _options(args)
        if args.dry_run:
            out.json(client.dry_run(messages, stream=not args.no_stream, provider=args.provider,
                                    model=args.model, **options))
            return 0
        response = ask(client, messages, args, out, options)
    if args.json:
        out.json(response.to_dict())
    return 0


def _collect_secrets(config: Any, out: Output) -> None:
    out.add_secrets(config.data.get("api_key"))
    for entry in config.entries:
        out.add_secrets(entry.get("api_key"))
    for name, value in config.env.items():
        if name.endswith(("_API_KEY", "_TOKEN")):
            out.add_secrets(value)


def _messages(args: argparse.Namespace, prompt: str) -> list[dict[str, Any]]:
    messages = [system(args.system)] if args.system else []
    messages.append(user(prompt, *args.image))
    return messages


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    return options
