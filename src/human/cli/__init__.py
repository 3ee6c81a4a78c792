"""The `human` command. Each command group lives in its own module; this one parses
arguments and turns every failure into one clear line and an exit code:

    0 success · 1 the API call failed · 2 usage or configuration error · 130 interrupted

Tracebacks appear only with --debug. Everything printed passes through `secrets.scrub`
so a key cannot reach the terminal even if a server echoes it back; the library's log
records go through the same `Output` (each warning printed once).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .._version import __version__
from .output import Output

__all__ = ["main"]


def _options(suppress: bool) -> argparse.ArgumentParser:
    """--config and --debug, accepted before and after the command. The command's copies
    default to SUPPRESS so they do not overwrite a value given before the command."""
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="PATH", help="use this config file only (else ~/.human/config.json "
                        "overlaid by ./.human/config.json, or $HU_CONFIG_PATH)", **default)
    parent.add_argument("--debug", action="store_true", help="show tracebacks and debug logs (keys are masked)",
                        **default)
    return parent


class _Command(argparse.ArgumentParser):
    """A command's parser, given its arguments only when the command is chosen (or its help
    asked for): building every command's arguments, and importing the modules that define
    some of them, cost every run of `human` ~20 ms of start-up."""

    def __init__(self, *, fill: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fill = fill

    def _filled(self) -> None:
        fill, self._fill = self._fill, None
        if fill is not None:
            fill(self)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        self._filled()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._filled()
        return super().format_help()


def _parser() -> argparse.ArgumentParser:
    common = _options(suppress=True)
    parser = argparse.ArgumentParser(
        prog="human", parents=[_options(suppress=False)],
        description="Talk to any OpenAI-compatible chat-completions API from one JSON config.",
    )
    parser.add_argument("--version", action="version", version=f"human {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Command)
    for name, summary, add_arguments in _COMMANDS:
        commands.add_parser(name, parents=[common], help=summary,  # type: ignore[list-item]  # typeshed wants a _Command
                            fill=lambda command, add=add_arguments: add(command, common))
    return parser


def _chat(chat: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    chat.add_argument("prompt", nargs="*", help="the prompt; stdin is appended when piped")
    chat.add_argument("-p", "--provider", help="provider name, 'compatible' or 'custom:<url>'")
    chat.add_argument("-m", "--model", help="model, sent exactly as written")
    chat.add_argument("-s", "--system", help="system message")
    chat.add_argument("-t", "--temperature", type=float, help="0 to 2 (0 is sent as 0)")
    chat.add_argument("--max-tokens", type=int, help="output token limit")
    chat.add_argument("--image", action="append", default=[], metavar="PATH_OR_URL", help="attach an image")
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.add_argument("--json", action="store_true", help="print the full response object as JSON")
    chat.add_argument("--usage", action="store_true", help="print token usage to stderr")
    chat.add_argument("--reasoning", action="store_true", help="print the model's reasoning to stderr")
    chat.add_argument("--timeout", type=float, metavar="SECONDS",
                      help="the whole call, every retry and wait included")
    chat.add_argument("--schema", metavar="FIELDS|FILE.json",
                      help="answer as one JSON object: fields ('name str, age int, bio: a short bio'; types str, "
                           "int, float, bool) or a JSON Schema (a .json file, or inline JSON)")
    chat.add_argument("--schema-multi", action="store_true", help="with --schema: a JSON array of such objects")
    chat.add_argument("--functions", action="append", default=[], metavar="FILE.py",
                      help="tools: every public function in this Python file (repeatable)")
    chat.add_argument("--mcp", action="append", default=[], metavar="NAME",
                      help="tools: the tools of this server from the config's mcp_servers (repeatable; needs "
                           "pip install 'human[mcp]')")
    chat.add_argument("--tools-approve", "--ta", action="store_true",
                      help="ask y/n on the terminal before each tool call")
    chat.add_argument("--chain-limit", type=int, default=10, metavar="N",
                      help="with tools: at most N model calls per prompt (default 10; 0: no limit)")
    chat.add_argument("--dry-run", action="store_true",
                      help="print URL, headers (key masked) and body; send nothing (in a terminal without a "
                           "prompt: the interactive chat, printing each turn's request)")
    chat.add_argument("-c", "--continue", dest="continue_", action="store_true",
                      help="continue the latest logged conversation (its messages are sent again)")
    chat.add_argument("--cid", metavar="ID", help="continue this conversation (an id `human logs` shows)")
    chat.add_argument("--no-log", action="store_true", help="do not log this chat (see `human logs off`)")


def _logs(logs: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    logs.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20; 0 for all)")
    logs.add_argument("-m", "--model", help="asked for or served by this model")
    logs.add_argument("-p", "--provider")
    logs.add_argument("-q", metavar="TEXT", help="full-text search over prompts and answers")
    logs.add_argument("--since", metavar="WHEN", help="30m, 12h, 7d, 2w, or a date such as 2026-12-01")
    logs.add_argument("--json", action="store_true")
    logs_sub = logs.add_subparsers(dest="action", metavar="ACTION")
    logs_sub.add_parser("list", parents=[common], help="the latest exchanges (the default)")
    logs_show = logs_sub.add_parser("show", parents=[common], help="one exchange, whole")
    logs_show.add_argument("id")
    logs_show.add_argument("--json", action="store_true")
    logs_sub.add_parser("path", parents=[common], help="where the log is")
    logs_sub.add_parser("on", parents=[common], help="log `human chat` exchanges (the default)")
    logs_sub.add_parser("off", parents=[common], help="stop logging `human chat` exchanges")
    logs_delete = logs_sub.add_parser("delete", parents=[common], help="delete one exchange, or --all")
    logs_delete.add_argument("id", nargs="?")
    logs_delete.add_argument("--all", action="store_true", help="delete every logged exchange")


def _usage(usage: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    usage.add_argument("--since", metavar="WHEN", help="30m, 12h, 7d, 2w, or a date such as 2026-12-01")
    usage.add_argument("--by", metavar="KEYS", help="comma-separated: day, provider, model, key (the gateway key; "
                       "default: day, provider, model)")
    usage.add_argument("--json", action="store_true")


def _providers(providers: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    providers_sub = providers.add_subparsers(dest="action", metavar="ACTION")
    show = providers_sub.add_parser("show", parents=[common], help="URL, headers, key source and a sample body")
    show.add_argument("name")
    show.add_argument("-m", "--model")
    providers.add_argument("--local", action="store_true", help="only local servers")


def _config(config: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    config_sub = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = config_sub.add_parser("init", parents=[common], help="write a starter config (asks in a terminal)")
    init.add_argument("--provider")
    init.add_argument("--model")
    init.add_argument("--base-url")
    init.add_argument("--api-key-env", metavar="VAR", help="read the key from this environment variable")
    init.add_argument("--api-key-stdin", action="store_true",
                      help="read the key from stdin (never pass keys as arguments)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    config_sub.add_parser("show", parents=[common], help="the merged config, keys masked, with each value's source")
    config_sub.add_parser("validate", parents=[common], help="check the config; non-zero exit on errors")
    config_sub.add_parser("path", parents=[common], help="which files are read")


def _keys(keys: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    keys_sub = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    keys_set = keys_sub.add_parser("set", parents=[common], help="store a provider's key (asked for, hidden)")
    keys_set.add_argument("provider")
    keys_set.add_argument("--stdin", action="store_true", help="read the key from stdin instead of asking")
    keys_set.add_argument("--keyring", action="store_true",
                          help="keep it in the system keyring (needs the keyring extra: pip install 'human[keyring]')")
    keys_sub.add_parser("list", parents=[common], help="providers with a key: masked, and where it comes from")
    keys_unset = keys_sub.add_parser("unset", parents=[common], help="remove a stored key")
    keys_unset.add_argument("provider")
    keys_sub.add_parser("path", parents=[common], help="where keys are stored")


def _models(models: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    models.add_argument("-p", "--provider")
    models.add_argument("--json", action="store_true")


def _doctor(doctor: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    doctor.add_argument("-p", "--provider", help="probe this provider (else the default; with none given, "
                        "local servers on their default ports are also looked for)")
    doctor.add_argument("-m", "--model", help="probe this model (else the default, else the first GET /models lists)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--no-save", action="store_true", help="do not save the capability profile")
    doctor.add_argument("--timeout", type=float, metavar="SECONDS", help="the whole of each probe request")


def _batch(batch: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    from .batch import add_arguments

    add_arguments(batch, common)


def _gateway(gateway: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    from .gateway import add_arguments

    add_arguments(gateway, common)


# (command, its line in `human --help`, what adds its arguments): in the order --help lists them
_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser, argparse.ArgumentParser], None]]] = [
    ("chat", "send a prompt (or chat interactively)", _chat),
    ("logs", "the log of chats: list, search, show, delete", _logs),
    ("usage", "tokens and cost from the log, by day, provider, model", _usage),
    ("providers", "list providers, or show how one resolves", _providers),
    ("config", "create, show or check the config file", _config),
    ("keys", "store, list and remove API keys (never in argv)", _keys),
    ("models", "list the models the provider serves", _models),
    ("doctor", "probe the endpoint: what works, what to fix; saves its capability profile", _doctor),
    ("batch", "send every request in a JSONL file (OpenAI Batch format); resumable", _batch),
    ("gateway", "serve every configured provider behind one OpenAI-compatible endpoint", _gateway),
]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Output(debug=args.debug)
    undo = _route_logs(out, args.debug)
    try:
        if args.command == "chat":
            from .chat import run
        elif args.command == "providers":
            from .providers import run
        elif args.command == "config":
            from .config import run
        elif args.command == "models":
            from .models import run
        elif args.command == "doctor":
            from .doctor import run
        elif args.command == "keys":
            from .keys import run
        elif args.command == "logs":
            from .logs import run
        elif args.command == "usage":
            from .logs import run_usage as run
        elif args.command == "batch":
            from .batch import run
        elif args.command == "gateway":
            from .gateway import run
        else:
            _parser().print_help()
            return 2
        return run(args, out)
    except KeyboardInterrupt:
        out.clear_status()
        out.newline_if_needed()
        return 130
    except BrokenPipeError:  # `human providers | head`: the reader left; nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes a line
        return out.fail(exc)
    finally:
        undo()


class _LogLines(logging.Handler):
    """The library's log records, printed through `Output`: scrubbed like everything else,
    and each warning once (a config warning used to appear twice: once from the log, once
    from the command). A record logged with extra={"human_notice": True} is a notice for
    the user, printed without the "warning:" label."""

    def __init__(self, out: Output) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not end the command
            return
        if record.levelno >= logging.WARNING:
            label = "" if getattr(record, "human_notice", False) else "warning: "
            self.out.once(f"human: {label}{message}")
        else:
            self.out.info(f"{record.name}: {message}")


def _route_logs(out: Output, debug: bool) -> Callable[[], None]:
    """Send the "human" loggers' records to `out`; returns what undoes it (main() may
    run more than once in one process, as the tests do)."""
    logger = logging.getLogger("human")
    handler, level = _LogLines(out), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    return undo


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
