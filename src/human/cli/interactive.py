"""The interactive chat: line editing and history (readline), multi-line input, slash
commands, and the conversation kept across turns.

    /model NAME   /provider NAME   /clear   /usage   /help   /exit
    A line ending in a backslash continues on the next line; a line of three double
    quotes opens and closes a block.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..client import Client
from ..errors import HumanError
from ..types import system, user
from .output import Output
from .turn import ask

HELP = (
    "commands: /model NAME · /provider NAME · /clear (forget the conversation) · /usage (toggle) · "
    "/exit · multi-line: end a line with \\ or wrap in \"\"\""
)


def _setup_readline() -> Any:
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return None
    history = Path.home() / ".human" / "history"
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    return readline, history


def _save_history(state: Any) -> None:
    if state is None:
        return
    readline, history = state
    try:
        history.parent.mkdir(mode=0o700, exist_ok=True)
        readline.write_history_file(history)
    except OSError:
        pass


def read_message(prompt: str = "you> ") -> str | None:
    """One user message, possibly several lines. None at end of input."""
    try:
        line = input(prompt)
    except EOFError:
        return None
    if line.strip() == '"""':
        lines = []
        while True:
            try:
                more = input("... ")
            except EOFError:
                break
            if more.strip() == '"""':
                break
            lines.append(more)
        return "\n".join(lines)
    lines = [line]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        try:
            lines.append(input("... "))
        except EOFError:
            break
    return "\n".join(lines)


def repl(client: Client, args: argparse.Namespace, out: Output) -> int:
    state = _setup_readline()
    target = client.target(args.provider, args.model)
    provider, model = target.provider, target.model
    out.info(f"human chat · {provider} · {model} · /help for commands, /exit or Ctrl-D to leave")
    history: list[dict[str, Any]] = [system(args.system)] if args.system else []
    show_usage = args.usage
    try:
        while True:
            try:
                text = read_message()
            except KeyboardInterrupt:
                out.info("")
                continue
            if text is None:
                out.info("")
                return 0
            command, _, rest = text.strip().partition(" ")
            if command in ("/exit", "/quit"):
                return 0
            if command == "/help":
                out.info(HELP)
                continue
            if command == "/clear":
                history = [system(args.system)] if args.system else []
                out.info("(conversation cleared)")
                continue
            if command == "/usage":
                show_usage = not show_usage
                out.info(f"(usage {'on' if show_usage else 'off'})")
                continue
            if command in ("/model", "/provider"):
                if not rest.strip():
                    out.info(f"(provider {provider}, model {model})")
                    continue
                try:
                    if command == "/model":
                        client.target(provider, rest.strip())
                        model = rest.strip()
                    else:
                        client.target(rest.strip(), model)
                        provider = rest.strip()
                except HumanError as exc:
                    out.info(f"human: error: {exc}")
                    continue
                out.info(f"(provider {provider}, model {model})")
                continue
            if not text.strip():
                continue
            history.append(user(text))
            turn_args = argparse.Namespace(**{**vars(args), "usage": show_usage, "json": False})
            try:
                response = ask(client, history, turn_args, out, {}, provider=provider, model=model)
            except KeyboardInterrupt:
                out.newline_if_needed()
                out.info("(stopped)")
                history.pop()
                continue
            except HumanError as exc:
                out.fail(exc)
                history.pop()
                continue
            history.append(response.to_message())
    finally:
        _save_history(state)
