"""One turn of a chat on the terminal: send, stream the answer to stdout, and print the
tool calls and the usage line. Shared by the one-shot and the interactive chat."""

from __future__ import annotations

import argparse
from typing import Any

from ..client import Client
from ..types import ChatResponse
from .output import Output


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
        assert stream.response is not None
        response = stream.response
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
