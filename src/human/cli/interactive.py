"""The interactive chat: line editing and history (readline), multi-line input, slash
commands, and the conversation kept across turns. Every `human chat` flag applies to
every turn (they live in one `Settings`), and `/set` changes them mid-session:

    /set                       show the settings
    /set temperature 0.3       /set max_tokens 200     /set system Be brief.
    /set timeout 30            /set stream off         /set usage on    /set reasoning on
    /set temperature none      (back to "not sent": the server's default)
    /model NAME   /provider NAME   /clear   /usage   /help   /exit

A line ending in a backslash continues on the next line; a line of three double quotes
opens and closes a block. With --dry-run each turn prints its request and sends nothing.
With -c / --cid the chat starts from a logged conversation's messages; /clear starts a
new one (the log files it as a new conversation).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..client import Client
from ..errors import HumanError
from ..types import system, user
from .output import Output
from .turn import Settings, ask

HELP = (
    "commands: /set [NAME VALUE] (temperature, max_tokens, system, timeout, stream, usage, reasoning) · "
    "/model NAME · /provider NAME · /clear (forget the conversation) · /usage (toggle) · /exit · "
    "multi-line: end a line with \\ or wrap in \"\"\""
)

# /set NAME -> (Settings field, parser). A parser raises ValueError with what it expects.
_NUMBER_NAMES = {"temperature": float, "max_tokens": int, "timeout": float}
_SWITCHES = ("stream", "usage", "reasoning")
_ALIASES = {"max-tokens": "max_tokens", "temp": "temperature", "t": "temperature"}


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


def apply_set(settings: Settings, text: str) -> str:
    """Apply `/set NAME VALUE` to `settings`; returns what to print. Raises ValueError."""
    name, _, value = text.strip().partition(" ")
    name = _ALIASES.get(name, name)
    value = value.strip()
    if not name:
        return describe(settings)
    if name in _NUMBER_NAMES:
        if value.lower() in ("none", "off", "default", ""):
            setattr(settings, name, None)
        else:
            try:
                number = _NUMBER_NAMES[name](value)
            except ValueError:
                raise ValueError(f"/set {name} takes a number (or none), not {value!r}") from None
            if name == "temperature" and not 0 <= number <= 2:
                raise ValueError("temperature is from 0 to 2")
            if name != "temperature" and number <= 0:
                raise ValueError(f"{name} must be positive")
            setattr(settings, name, number)
    elif name in _SWITCHES:
        if value.lower() not in ("on", "off", "true", "false", "yes", "no", "1", "0"):
            raise ValueError(f"/set {name} takes on or off, not {value!r}")
        setattr(settings, name, value.lower() in ("on", "true", "yes", "1"))
    elif name == "system":
        settings.system = value or None
    else:
        known = ", ".join([*_NUMBER_NAMES, "system", *_SWITCHES])
        raise ValueError(f"/set knows {known}; not {name!r}")
    return f"({name} {_shown(getattr(settings, name))})"


def describe(settings: Settings) -> str:
    shown = [f"{name} {_shown(getattr(settings, name))}"
             for name in ("provider", "model", "temperature", "max_tokens", "timeout", "system", *_SWITCHES)]
    return "(" + " · ".join(shown) + ")"


def _shown(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def repl(client: Client, settings: Settings, out: Output, resumed: list[dict[str, Any]] | None = None,
         tools: Any = None) -> int:
    """The chat loop; `resumed` is a logged conversation to go on with (`-c`, `--cid`); with
    `tools` (cli/tools.Tools) each prompt goes through the agent loop."""
    state = _setup_readline()
    settings = dataclasses.replace(settings, images=list(settings.images))  # /set edits a copy
    if not settings.dry_run:
        target = client.target(settings.provider, settings.model)  # zero-config: finds the server now
    else:
        target = client.target(settings.provider, settings.model, require_key=False, discover=False)
    settings.provider, settings.model = target.provider, target.model
    dry = " · dry run: nothing is sent" if settings.dry_run else ""
    out.info(f"human chat · {settings.provider} · {settings.model}{dry} · /help for commands, /exit or Ctrl-D "
             "to leave")

    def fresh() -> list[dict[str, Any]]:
        return [system(settings.system)] if settings.system else []

    history = list(resumed) if resumed else fresh()
    if resumed and settings.system and not any(m.get("role") == "system" for m in history):
        history[:0] = fresh()
    images = settings.images  # attached to the first message only
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
                history = fresh()
                out.info("(conversation cleared)")
                continue
            if command == "/usage":
                settings.usage = not settings.usage
                out.info(f"(usage {'on' if settings.usage else 'off'})")
                continue
            if command == "/set":
                try:
                    out.info(apply_set(settings, rest))
                except ValueError as exc:
                    out.info(f"human: error: {exc}")
                    continue
                if rest.strip().startswith("system"):
                    history = [m for m in history if m.get("role") != "system"]
                    history[:0] = fresh()
                continue
            if command in ("/model", "/provider"):
                if not rest.strip():
                    out.info(f"(provider {settings.provider}, model {settings.model})")
                    continue
                try:
                    if command == "/model":
                        client.target(settings.provider, rest.strip(), require_key=not settings.dry_run)
                        settings.model = rest.strip()
                    else:
                        client.target(rest.strip(), settings.model, require_key=not settings.dry_run)
                        settings.provider = rest.strip()
                except HumanError as exc:
                    out.info(f"human: error: {exc}")
                    continue
                out.info(f"(provider {settings.provider}, model {settings.model})")
                continue
            if not text.strip():
                continue
            history.append(user(text, *images))
            images = []
            if tools:
                history = _tool_turn(client, history, settings, out, tools)
                continue
            try:
                response = ask(client, history, settings, out)
            except KeyboardInterrupt:
                out.clear_status()
                out.newline_if_needed()
                out.info("(stopped)")
                history.pop()
                continue
            except HumanError as exc:
                out.fail(exc)
                history.pop()
                continue
            if response is None:  # a dry run: nothing was sent, so there is no answer to keep
                history.pop()
                continue
            history.append(response.to_message())
    finally:
        _save_history(state)


def _tool_turn(client: Client, history: list[dict[str, Any]], settings: Settings, out: Output,
               tools: Any) -> list[dict[str, Any]]:
    """One prompt with tools; returns the conversation to go on with. After a failure or
    Ctrl-C it keeps what the run did (every tool call answered), or drops the prompt when
    nothing was done."""
    from .tools import ask_with_tools

    started: list[Any] = []
    try:
        run = ask_with_tools(client, history, settings, tools, out, started)
    except KeyboardInterrupt:
        out.clear_status()
        out.newline_if_needed()
        out.info("(stopped)")
    except HumanError as exc:
        out.fail(exc)
    else:
        return history[:-1] if run is None else list(run.messages)  # None: a dry run, nothing sent
    run = started[0] if started else None
    if run is None or run.plan is None or not run.plan.steps:
        return history[:-1]
    return list(run.messages)
