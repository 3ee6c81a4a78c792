"""The `human` command. Each command group lives in its own module; this one parses
arguments and turns every failure into one clear line and an exit code:

    0 success · 1 the API call failed · 2 usage or configuration error · 130 interrupted

Tracebacks appear only with --debug. Everything printed passes through `secrets.scrub`
so a key cannot reach the terminal even if a server echoes it back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__

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


def _parser() -> argparse.ArgumentParser:
    common = _options(suppress=True)
    parser = argparse.ArgumentParser(
        prog="human", parents=[_options(suppress=False)],
        description="Talk to any OpenAI-compatible chat-completions API from one JSON config.",
    )
    parser.add_argument("--version", action="version", version=f"human {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser("chat", parents=[common], help="send a prompt (or chat interactively)")
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
    chat.add_argument("--timeout", type=float, help="total timeout in seconds")
    chat.add_argument("--dry-run", action="store_true", help="print URL, headers (key masked) and body; send nothing")

    providers = commands.add_parser("providers", parents=[common], help="list providers, or show how one resolves")
    providers_sub = providers.add_subparsers(dest="action", metavar="ACTION")
    show = providers_sub.add_parser("show", parents=[common], help="URL, headers, key source and a sample body")
    show.add_argument("name")
    show.add_argument("-m", "--model")
    providers.add_argument("--local", action="store_true", help="only local servers")

    config = commands.add_parser("config", parents=[common], help="create, show or check the config file")
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

    models = commands.add_parser("models", parents=[common], help="list the models the provider serves")
    models.add_argument("-p", "--provider")
    models.add_argument("--json", action="store_true")

    doctor = commands.add_parser("doctor", parents=[common],
                                 help="probe the endpoint: what works, what to fix; saves its capability profile")
    doctor.add_argument("-p", "--provider", help="probe this provider (else the default; with none given, "
                        "local servers on their default ports are also looked for)")
    doctor.add_argument("-m", "--model", help="probe this model (else the default, else the first GET /models lists)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--no-save", action="store_true", help="do not save the capability profile")
    doctor.add_argument("--timeout", type=float, help="total timeout per request in seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .output import Output

    out = Output(debug=args.debug)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
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
        else:
            _parser().print_help()
            return 2
        return run(args, out)
    except KeyboardInterrupt:
        out.newline_if_needed()
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes a line
        return out.fail(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
