"""`human chat`: one prompt (streamed to stdout), a piped file, or an interactive chat."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..client import Client
from ..config import load_config
from ..types import ChatResponse, system, user
from .output import Output


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
                from .interactive import repl

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


def ask(client: Client, messages: list[dict[str, Any]], args: argparse.Namespace, out: Output,
        options: dict[str, Any], provider: str | None = None, model: str | None = None) -> ChatResponse:
    """Send one turn; stream it to stdout unless --no-stream/--json. Returns the answer."""
    provider = provider or args.provider
    model = model or args.model
    if args.no_stream or args.json:
        response = client.chat(messages, provider=provider, model=model, **options)
        if not args.json:
            if args.reasoning and response.reasoning:
                out.info(response.reasoning)
            out.write(response.content or "")
            _print_tool_calls(response, out)
            out.newline_if_needed()
    else:
        stream = client.stream(messages, provider=provider, model=model, **options)
        try:
            for event in stream:
                if event.type == "content":
                    out.write(event.text)
                elif event.type == "reasoning" and args.reasoning:
                    out.stderr.write(out.clean(event.text))
        finally:
            stream.close()
        response = stream.response
        assert response is not None
        _print_tool_calls(response, out)
        out.newline_if_needed()
    if args.usage:
        out.info(_usage_line(response))
    return response


def _print_tool_calls(response: ChatResponse, out: Output) -> None:
    for call in response.tool_calls:
        out.newline_if_needed()
        out.line(f"[tool call {call.id or '?'}] {call.name}({call.arguments})")


def _usage_line(response: ChatResponse) -> str:
    usage = response.usage
    served = f"{response.provider}/{response.model_requested}"
    if response.attempt > 1:
        served += f" (attempt {response.attempt})"
    if usage is None:
        return f"usage: not reported by the server · {served}"
    parts = [f"prompt {usage.prompt_tokens}", f"completion {usage.completion_tokens}",
             f"total {usage.total_tokens}"]
    if usage.cached_tokens:
        parts.append(f"cached {usage.cached_tokens}")
    if usage.reasoning_tokens:
        parts.append(f"reasoning {usage.reasoning_tokens}")
    return "usage: " + ", ".join(parts) + f" · {served}"
