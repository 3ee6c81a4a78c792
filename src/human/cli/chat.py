"""`human chat`: one prompt (streamed to stdout), a piped file, or an interactive chat.

`--schema` asks for one JSON object (`human.structured`) and prints it validated.
`--dry-run` never sends, in any mode: with a prompt it prints the request; in a terminal
without one, the interactive chat prints each turn's request instead of sending it.
With nothing configured the client looks for a local server (`human.discover`) and says
which on stderr, once.

Every exchange is logged (~/.human/logs.db) unless `--no-log` or `human logs off`.
`-c` continues the latest logged conversation and `--cid ID` a given one: its messages
are sent again with the new prompt (the interactive chat starts from them), and the new
exchanges join that conversation in the log (issue 12).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..client import Client
from ..config import Config, load_config
from ..errors import ConfigError
from .output import Output
from .turn import Settings, ask, messages_for, progress_for


def run(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    out.config = config
    collect_secrets(config, out)
    settings = Settings.from_args(args)
    if args.schema is not None:
        settings.schema = load_schema(args.schema)
    elif args.schema_multi:
        out.info("human: error: --schema-multi needs --schema (the fields of each object)")
        return 2
    prompt = " ".join(args.prompt).strip()
    piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    if piped:
        prompt = f"{prompt}\n\n{piped}" if prompt else piped
    interactive = not prompt and piped is None and sys.stdin is not None and sys.stdin.isatty()
    if not prompt and not interactive:
        out.info("human: error: no prompt: give one as an argument or pipe text in")
        return 2
    if interactive and settings.schema is not None:
        out.info("human: error: --schema answers one prompt: give it as an argument or pipe it in")
        return 2
    if settings.dry_run and not (settings.provider or config.default_provider):
        out.info("human: error: no provider configured, and a dry run does not look for local servers: "
                 "pass --provider (and --model), or run `human config init`")
        return 2
    history = _history(args, config, out)
    if history is None:
        return 2
    tools = _tools(args)
    if tools and settings.schema is not None:
        out.info("human: error: --schema does not combine with --functions / --mcp yet: ask for the tools' "
                 "answer first, then for its structure")
        return 2
    # a dry run sends nothing, so there is nothing to log (and neither the log's store nor its writer is loaded)
    log = False if args.no_log or settings.dry_run else _log_file(config)
    with Client(provider=args.provider, model=args.model, config=config, progress=progress_for(out),
                log=log) as client:
        if interactive:
            from .interactive import repl  # readline is loaded only for a terminal chat

            return repl(client, settings, out, history, tools)
        if tools:
            from .tools import ask_with_tools

            ask_with_tools(client, messages_for(settings, prompt, history), settings, tools, out)
        else:
            ask(client, messages_for(settings, prompt, history), settings, out)
    return 0


def load_schema(value: str) -> dict[str, Any]:
    """`--schema`: inline JSON, a .json file, or a concise field list."""
    from ..structured.concise import concise_schema

    text = value.strip()
    if text.endswith(".json") and not text.startswith("{"):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--schema: cannot read {path}: {exc.strerror or exc}") from None
        where = str(path)
    elif text.startswith("{"):
        where = "the inline --schema"
    else:
        return concise_schema(text)
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--schema: {where} is not valid JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"--schema: {where} must hold a JSON Schema object, not {type(schema).__name__}")
    return schema


def _history(args: argparse.Namespace, config: Config, out: Output) -> list[dict[str, Any]] | None:
    """The messages of the conversation to continue ([] for a new one); None (after
    saying why) when there is none to continue."""
    if not args.continue_ and not args.cid:
        return []
    from ..store import open_store
    from .logs import log_path

    path = log_path(config.env)
    if not path.exists():
        out.info(f"human: error: nothing to continue: no log at {path} yet")
        return None
    store = open_store(path, retention_days=config.log_retention_days)
    try:
        if args.cid:
            found = store.get(args.cid)
            conversation = found.conversation_id if found is not None else None
            if conversation is None:
                out.info(f"human: error: no conversation {args.cid!r} in the log (`human logs` lists ids)")
                return None
        else:
            conversation = store.latest_conversation()
            if conversation is None:
                out.info("human: error: nothing to continue: the log is empty")
                return None
        history = store.history(conversation)
    finally:
        store.close()
    if not history:
        out.info(f"human: error: conversation {conversation} has no answered exchange to continue from")
        return None
    out.info(f"(continuing conversation {conversation}: {len(history)} messages)")
    return history


def _log_file(config: Config) -> Path | bool:
    """Where this chat's exchanges are logged, or False after `human logs off`."""
    from .logs import log_path, logging_on

    return log_path(config.env) if logging_on(config.env) else False


def _tools(args: argparse.Namespace) -> Any:
    """--functions, --mcp, --tools-approve, --chain-limit (cli/tools.py), or None."""
    if not (args.functions or args.mcp):
        if args.tools_approve:
            raise ConfigError("--tools-approve needs tools: add --functions FILE.py or --mcp NAME")
        return None
    if args.chain_limit < 0:
        raise ConfigError("--chain-limit takes a number of model calls, 0 for no limit")
    from .tools import Tools, load_functions

    return Tools(load_functions(args.functions), list(args.mcp), args.tools_approve, args.chain_limit)


def collect_secrets(config: Config, out: Output) -> None:
    """Every key the config or the environment holds, so output can scrub them."""
    out.add_secrets(config.data.get("api_key"))
    for entry in config.entries:
        out.add_secrets(entry.get("api_key"))
    for name, value in config.env.items():
        if name.endswith(("_API_KEY", "_TOKEN")):
            out.add_secrets(value)


