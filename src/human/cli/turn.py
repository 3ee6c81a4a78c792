"""One turn of a chat on the terminal: send, stream the answer to stdout, and print the
tool calls, the notices and the usage line. Shared by the one-shot and the interactive
chat, which keep their flags in one `Settings` (the interactive `/set` changes it).

While the answer is awaited, a terminal's stderr shows a status line made from the
client's progress hook ("waiting for groq…", "rate limited, retrying in 2.0 s (attempt
2/3)"); the first byte of the answer erases it. `--usage` on a stream asks the server
for usage (`stream_options.include_usage`) even where the provider's row does not; a
server that rejects that is remembered in the endpoint's capability profile, the turn
is sent again without it, and later calls leave it out.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ..client import Client, Progress
from ..core.retry import Send, Sleep
from ..errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    HumanError,
    RateLimitError,
    ServerError,
)
from ..profile import changes_for, rejects_stream_options, remember
from ..types import ChatResponse, system, user
from .output import Output

__all__ = ["Settings", "ask", "messages_for", "progress_for", "usd"]


@dataclass
class Settings:
    """Every `human chat` flag that shapes a turn; the interactive chat keeps one and
    `/set` edits it, so the one-shot and the interactive chat send alike."""

    provider: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    images: list[str] = field(default_factory=list)
    stream: bool = True
    json: bool = False
    usage: bool = False
    reasoning: bool = False
    timeout: float | None = None
    dry_run: bool = False
    schema: dict[str, Any] | None = None  # --schema, read (human.structured); None = plain text
    schema_multi: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        return cls(provider=args.provider, model=args.model, system=args.system, temperature=args.temperature,
                   max_tokens=args.max_tokens, images=list(args.image), stream=not args.no_stream, json=args.json,
                   usage=args.usage, reasoning=args.reasoning, timeout=args.timeout, dry_run=args.dry_run,
                   schema_multi=getattr(args, "schema_multi", False))

    @property
    def response_format(self) -> dict[str, Any] | None:
        """What `--schema` asks for: the object, or with `--schema-multi` an array of them."""
        if self.schema is None:
            return None
        return {"type": "array", "items": self.schema} if self.schema_multi else self.schema

    def options(self) -> dict[str, Any]:
        """The request options these settings send (None = not sent)."""
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        return options

    @property
    def streaming(self) -> bool:
        return self.stream and not self.json


def messages_for(settings: Settings, prompt: str, history: list[dict[str, Any]] | None = None
                 ) -> list[dict[str, Any]]:
    """The messages of a turn: the system message (unless `history`, a continued
    conversation, already has its own), the history, the prompt."""
    history = list(history or ())
    has_system = any(message.get("role") == "system" for message in history)
    messages = [system(settings.system)] if settings.system and not has_system else []
    messages += history
    messages.append(user(prompt, *settings.images))
    return messages


def progress_for(out: Output) -> Progress:
    """The client's progress hook, shown as the terminal's status line."""

    def show(action: Send | Sleep) -> None:
        if isinstance(action, Sleep):
            out.status(f"{_what_failed(action.error)}, retrying in {action.seconds:.1f} s "
                       f"(attempt {action.attempt}/{action.tries})")
        else:
            again = f" (attempt {action.attempt})" if action.attempt > 1 else ""
            out.status(f"waiting for {action.target.provider}{again}…")

    return show


def ask(client: Client, messages: list[dict[str, Any]], settings: Settings, out: Output) -> ChatResponse | None:
    """Send one turn (or, for a dry run, print what would be sent). Returns the answer."""
    options = settings.options()
    where: dict[str, Any] = {"provider": settings.provider, "model": settings.model}
    if settings.schema is not None:
        return _ask_structured(client, messages, settings, out, {**where, **options})
    if settings.dry_run:
        if settings.streaming and settings.usage:
            options.update(_usage_options(client, settings))
        out.json(client.dry_run(messages, stream=settings.streaming, **where, **options))
        return None
    if not settings.streaming:
        response = client.chat(messages, timeout=settings.timeout, **where, **options)
        out.clear_status()
        if not settings.json:
            if settings.reasoning and response.reasoning:
                out.reasoning(response.reasoning + "\n")
            out.write(response.content or "")
            _print_tool_calls(response, out)
            out.newline_if_needed()
    else:
        asked = _usage_options(client, settings) if settings.usage else {}
        try:
            response = _stream(client, messages, settings, out, {**options, **asked})
        except BadRequestError as exc:
            if not asked or not rejects_stream_options(exc):
                raise
            target = client.target(settings.provider, settings.model)
            remember(target.provider, target.base_url, target.model, accepts_stream_options=False)
            out.once(f"human: note: {target.provider} rejects stream_options, so a stream cannot ask for usage "
                     "there (remembered for this endpoint); --no-stream reports usage")
            response = _stream(client, messages, settings, out, options)
    notices = _notices(response, settings, client)
    for notice in notices:
        out.info(f"human: note: {notice}")
    if settings.json:
        out.json({**response.to_dict(), "notices": notices})
    if settings.usage:
        out.info(_usage_line(response))
    return response


def _ask_structured(client: Client, messages: list[dict[str, Any]], settings: Settings, out: Output,
                    options: dict[str, Any]) -> ChatResponse | None:
    """`--schema`: the validated JSON on stdout (with --json: the whole response and it).
    Not streamed: the object is printed once it is whole and checked."""
    if settings.dry_run:
        out.json(client.dry_run(messages, response_format=settings.response_format, **options))
        return None
    response = client.chat(messages, response_format=settings.response_format, timeout=settings.timeout, **options)
    out.clear_status()
    if settings.reasoning and response.reasoning:
        out.reasoning(response.reasoning + "\n")
    if settings.json:
        out.json({**response.to_dict(), "parsed": response.parsed})
    else:
        out.json(response.parsed)
    if settings.usage:
        out.info(_usage_line(response))
    return response


def _stream(client: Client, messages: list[dict[str, Any]], settings: Settings, out: Output,
            options: dict[str, Any]) -> ChatResponse:
    stream = client.stream(messages, provider=settings.provider, model=settings.model, timeout=settings.timeout,
                           **options)
    thinking = False
    try:
        for event in stream:
            if event.type == "content":
                if thinking:
                    out.reasoning("\n")
                    thinking = False
                out.write(event.text)
            elif event.type == "reasoning" and settings.reasoning:
                out.reasoning(event.text)
                thinking = True
    finally:
        stream.close()
        out.clear_status()
    if thinking:
        out.reasoning("\n")
    assert stream.response is not None
    response = stream.response
    _print_tool_calls(response, out)
    out.newline_if_needed()
    return response


def _usage_options(client: Client, settings: Settings) -> dict[str, Any]:
    """`stream_options.include_usage` for this turn, unless the provider's row already
    sends it or the endpoint's profile says the server rejects it."""
    target = client.target(settings.provider, settings.model)
    if target.stream_usage:
        return {}
    drop, _ = changes_for(target.provider, target.base_url, target.model)
    if "stream_options" in drop:
        return {}
    return {"extra_body": {"stream_options": {"include_usage": True}}}


def _notices(response: ChatResponse, settings: Settings, client: Client) -> list[str]:
    notices = []
    if response.finish_reason == "length":
        limit = settings.max_tokens
        if limit is None:
            limit = client.target(settings.provider, settings.model).max_tokens
        now = f" of {limit} tokens" if limit is not None else ""
        notices.append(f"the answer was cut off at the output limit{now} (finish_reason \"length\"); "
                       "raise it with --max-tokens N")
    return notices


def _what_failed(error: HumanError | None) -> str:
    if isinstance(error, RateLimitError):
        return "rate limited"
    if isinstance(error, ServerError):
        return f"server error (HTTP {error.status})" if error.status else "server error"
    if isinstance(error, APITimeoutError):
        return "no answer in time"
    if isinstance(error, APIConnectionError):
        return "connection failed"
    return "failed"


def _print_tool_calls(response: ChatResponse, out: Output) -> None:
    for call in response.tool_calls:
        out.newline_if_needed()
        out.line(f"[tool call {call.id or '?'}] {call.name}({call.arguments})")


def _usage_line(response: ChatResponse) -> str:
    usage = response.usage
    served = f"{response.provider}/{response.model_requested}"
    if response.attempt > 1:
        served += f" (attempt {response.attempt})"
    cost = response.cost
    price = f" · cost {usd(cost.amount)}" if cost is not None else " · cost unknown"
    if usage is None:
        return f"usage: not reported by the server · {served}{price}"
    parts = [f"prompt {usage.prompt_tokens}", f"completion {usage.completion_tokens}",
             f"total {usage.total_tokens}"]
    if usage.cached_tokens:
        parts.append(f"cached {usage.cached_tokens}")
    if usage.reasoning_tokens:
        parts.append(f"reasoning {usage.reasoning_tokens}")
    return "usage: " + ", ".join(parts) + f" · {served}{price}"


def usd(amount: Any) -> str:
    """An exact amount without a float's noise: "$0.000475", "$0.00"."""
    text = format(amount.normalize(), "f") if amount else "0"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"

