"""`human providers` (the registry as a table) and `human providers show NAME`."""

from __future__ import annotations

import argparse

from ..config import load_config
from ..config.registry import builtin_rows
from ..core.secret import mask
from ..types import user
from .output import Output
from .table import table, terminal_width


def run(args: argparse.Namespace, out: Output) -> int:
    if getattr(args, "action", None) == "show":
        return show(args, out)
    rows = [row for row in builtin_rows() if row.local or not args.local]
    out.line(table(
        ["name", "aliases", "base URL", "key env var", "key?"],
        [[row.name, ", ".join(row.aliases), row.base_url, row.api_key_env or "-",
          "yes" if row.requires_key else "no"] for row in rows],
        width=terminal_width(out.stdout),
    ))
    names = sum(1 + len(row.aliases) for row in rows)
    out.info(f"{len(rows)} providers, {names} names. Any other server: \"compatible\" + base_url, "
             "or custom:https://…/v1. Details: human providers show NAME")
    return 0


def show(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    model = args.model or config.default_model or "MODEL"
    from ..client import Client

    with Client(provider=args.name, model=model, config=config) as client:
        target = client.target(args.name, model, require_key=False)
        preview = client.dry_run([user("hi")], provider=args.name, model=model)
    row = target.row
    out.line(f"provider     {target.provider}" + (f" (registry row {row.name!r})" if row else ""))
    out.line(f"url          {target.url}")
    key = f"{mask(target.key.reveal())} from {target.key_source}" if target.key else target.key_source
    out.line(f"key          {key}")
    out.line(f"auth         {target.auth}")
    out.line(f"token field  {target.token_field}")
    out.line(f"stream usage {'requested (stream_options.include_usage)' if target.stream_usage else 'not requested'}")
    t = target.timeouts
    out.line(f"timeouts     connect {_secs(t.connect)} · first byte {_secs(t.first_byte)} · idle {_secs(t.idle)} "
             f"· total {_secs(t.total)}")
    if row is not None and row.default_model:
        out.line(f"model        {row.default_model} is documented by the vendor ({row.default_model_source})")
    if row is not None and row.source:
        out.line(f"verified     {row.source}")
    for note in target.notes:
        out.line(f"note         {note}")
    out.line("headers:")
    for name, value in preview["headers"].items():
        out.line(f"  {name}: {value}")
    out.line("body (for the prompt \"hi\"):")
    out.json(preview["body"])
    return 0


def _secs(value: float | None) -> str:
    return "none" if value is None else f"{value:g}s"
