"""`human logs` and `human usage`: read the exchange log (issue 12).

    human logs                     the 20 latest exchanges (-n N, --model, --provider,
                                   -q TEXT full-text search, --since 7d|2026-12-01, --json)
    human logs show ID             one exchange whole (ID or a unique prefix; --json)
    human logs path                where the log is
    human logs on | off            log `human chat` exchanges or not (on by default)
    human logs delete ID | --all   delete one exchange, or every one
    human usage                    tokens and cost by day, provider and model (--since,
                                   --by day,provider,model,key, --json); the total line is the
                                   sum of the lines above it

The log is ~/.human/logs.db, or $HU_STATE_DIR/logs.db. `human logs off` leaves a marker
file beside it; library clients log only when asked (`Client(log=True)`). With
"log_retention_days" in the config, reading the log deletes what is older.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..config import load_config
from ..store import Exchange, Query, Store, UsageRow, default_path, open_store
from .output import Output
from .table import table, terminal_width
from .turn import usd

__all__ = ["log_path", "logging_on", "parse_since", "run", "run_usage"]

OFF_MARKER = "logs-off"


def log_path(env: Mapping[str, str]) -> Path:
    return default_path(env)


def logging_on(env: Mapping[str, str]) -> bool:
    """Whether `human chat` logs (`human logs on|off`)."""
    return not (log_path(env).parent / OFF_MARKER).exists()


def run(args: argparse.Namespace, out: Output) -> int:
    try:
        return _run(args, out)
    except ValueError as exc:  # a --since the user mistyped
        out.info(f"human: error: {exc}")
        return 2


def _run(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    path = log_path(config.env)
    action = getattr(args, "action", None)
    if action == "path":
        out.line(str(path))
        return 0
    if action in ("on", "off"):
        marker = path.parent / OFF_MARKER
        if action == "off":
            marker.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)
        out.info(f"human chat logging is {action} ({path})")
        return 0
    if not path.exists():
        out.info(f"no log yet at {path}: `human chat` writes one (unless `human logs off`)")
        return 0 if action in (None, "list") else 1
    store = open_store(path, retention_days=config.log_retention_days)
    try:
        if action == "show":
            return _show(store, args.id, args.json, out)
        if action == "delete":
            return _delete(store, args, out)
        return _list(store, args, out)
    finally:
        store.close()


def run_usage(args: argparse.Namespace, out: Output) -> int:
    config = load_config(args.config)
    path = log_path(config.env)
    by = [name.strip() for name in args.by.split(",") if name.strip()] if args.by else ["day", "provider", "model"]
    unknown = [name for name in by if name not in ("day", "provider", "model", "key")]
    if unknown:
        out.info(f"human: error: --by takes day, provider, model and key (the gateway key; comma-separated), "
                 f"not {', '.join(unknown)}")
        return 2
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        out.info(f"human: error: {exc}")
        return 2
    if not path.exists():
        rows: list[UsageRow] = []
    else:
        store = open_store(path, retention_days=config.log_retention_days)
        try:
            rows = store.usage(since, by)
        finally:
            store.close()
    total = _total(rows)
    if args.json:
        out.json({"since": None if since is None else _iso(since), "by": by,
                  "rows": [_usage_dict(row, by) for row in rows], "total": _usage_dict(total, [])})
        return 0
    headers = [*by, "calls", "errors", "prompt", "output", "cached", "cost (USD)"]
    lines = [[*(getattr(row, name) or "-" for name in by), f"{row.exchanges:,}", f"{row.errors:,}",
              f"{row.prompt_tokens:,}", f"{row.completion_tokens:,}", f"{row.cached_tokens:,}", _money(row)]
             for row in rows]
    label = ["total", *([""] * (len(by) - 1))] if by else []
    lines.append([*label, f"{total.exchanges:,}", f"{total.errors:,}", f"{total.prompt_tokens:,}",
                  f"{total.completion_tokens:,}", f"{total.cached_tokens:,}", _money(total)])
    out.line(table(headers, lines, width=terminal_width(out.stdout)))
    if total.unpriced:
        out.info(f"{total.unpriced:,} exchange(s) have no price (unknown model or no usage reported): their cost "
                 "is not in the sums; `human logs show ID` says why, \"prices\" in the config fixes it")
    return 0


# ---- list and show ------------------------------------------------------------------------------


def _list(store: Store, args: argparse.Namespace, out: Output) -> int:
    since = parse_since(args.since) if args.since else None
    rows = store.exchanges(Query(limit=args.n or None, model=args.model, provider=args.provider, text=args.q,
                                 since_ms=since))
    if args.json:
        out.json([row.to_dict() for row in rows])
        return 0
    if not rows:
        out.info("no exchanges match")
        return 0
    lines = [[row.id, _when(row.started_ms), row.model or row.model_requested or "-", _tokens(row), _cost(row),
              _first_line(row.prompt if row.ok else f"[{row.error_type}] {row.prompt}")]
             for row in reversed(rows)]  # oldest first, the newest last: next to the prompt
    headers = ["id", "time", "model", "tokens", "cost", "prompt"]
    width = terminal_width(out.stdout)
    if width is not None:  # the prompt gives way first; an id is never cut (it is for copying)
        used = sum(max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers[:-1]))
        room = max(20, width - used - 2 * (len(headers) - 1))
        lines = [[*line[:-1], _cut(line[-1], room)] for line in lines]
    out.line(table(headers, lines))
    return 0


def _show(store: Store, exchange_id: str, as_json: bool, out: Output) -> int:
    row = store.get(exchange_id)
    if row is None:
        out.info(f"human: error: no exchange {exchange_id!r} (or more than one starts with it); "
                 "`human logs` lists ids")
        return 2
    if as_json:
        out.json(row.to_dict())
        return 0
    served = row.model if row.model and row.model != row.model_requested else None
    facts = [
        ("id", row.id), ("conversation", row.conversation_id), ("time", _when(row.started_ms, seconds=True)),
        ("provider", row.provider), ("model", row.model_requested + (f" (served by {served})" if served else "")
                                     if row.model_requested else served),
        ("attempts", str(row.attempts)),
        ("latency", (f"first token {row.ttft_ms:.0f} ms, " if row.ttft_ms is not None else "")
         + (f"total {row.total_ms:.0f} ms" if row.total_ms is not None else "")),
        ("usage", _tokens(row, long=True)), ("cost", _cost(row, long=True)),
        ("finish", row.finish_reason), ("error", f"{row.error_type}: {row.error}" if row.error_type else None),
    ]
    for name, value in facts:
        if value:
            out.line(f"{name + ':':14}{value}")
    for message in json.loads(row.messages or "[]"):
        out.line("")
        out.line(f"--- {message.get('role')} ---")
        out.line(_text(message.get("content")))
    if row.reasoning:
        out.line("")
        out.line("--- reasoning ---")
        out.line(row.reasoning)
    if row.answer is not None or row.tool_calls:
        out.line("")
        out.line("--- assistant ---")
        if row.answer:
            out.line(row.answer)
        for call in json.loads(row.tool_calls or "[]"):
            function = call.get("function", {})
            out.line(f"[tool call {call.get('id') or '?'}] {function.get('name')}({function.get('arguments')})")
    return 0


def _delete(store: Store, args: argparse.Namespace, out: Output) -> int:
    if args.all:
        out.info(f"deleted {store.delete_all():,} exchange(s)")
        return 0
    if not args.id:
        out.info("human: error: say which: `human logs delete ID`, or `--all`")
        return 2
    found = store.get(args.id)
    if found is None or not store.delete(found.id):
        out.info(f"human: error: no exchange {args.id!r} (or more than one starts with it)")
        return 2
    out.info(f"deleted {found.id}")
    return 0


# ---- --since ------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)\s*(m|min|h|d|w)$")
_UNIT_S = {"m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_since(text: str, now: dt.datetime | None = None) -> int:
    """"7d", "12h", "30m", "2w" ago, or a date / date-time (ISO; local time when no zone
    is given) -> unix milliseconds. Raises ValueError with the accepted forms."""
    text = text.strip()
    now = now or dt.datetime.now(dt.timezone.utc)
    match = _RELATIVE.match(text.lower())
    if match:
        return int((now.timestamp() - int(match.group(1)) * _UNIT_S[match.group(2)]) * 1000)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: use 30m, 12h, 7d, 2w, or a date such as 2026-12-01") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as a person means a date
    return int(moment.timestamp() * 1000)


# ---- formatting ---------------------------------------------------------------------------------


def _when(ms: int, seconds: bool = False) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M")


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="seconds")


def _tokens(row: Exchange, long: bool = False) -> str:
    if row.prompt_tokens is None and row.completion_tokens is None:
        return "-" if not long else "not reported"
    text = f"{row.prompt_tokens or 0}→{row.completion_tokens or 0}"
    if not long:
        return text
    parts = [f"prompt {row.prompt_tokens}", f"completion {row.completion_tokens}"]
    for name in ("cached_tokens", "cache_write_tokens", "reasoning_tokens"):
        value = getattr(row, name)
        if value:
            parts.append(f"{name.replace('_tokens', '').replace('_', ' ')} {value}")
    return ", ".join(parts)


def _cost(row: Exchange, long: bool = False) -> str:
    if row.cost is None:
        if long:
            return f"unknown: {row.cost_note}" if row.cost_note else "unknown"
        return "?" if row.ok else "-"
    text = usd(Decimal(row.cost))
    return f"{text} ({row.cost_note})" if long and row.cost_note else text


def _money(row: UsageRow) -> str:
    text = usd(row.cost)
    return text + (f" (+{row.unpriced:,} unpriced)" if row.unpriced else "")




def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _first_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", f"[{part.get('type')}]")) for part in content if isinstance(part, dict))
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def _total(rows: list[UsageRow]) -> UsageRow:
    """The sum of the rows themselves, so the total line is exactly what is above it."""
    return UsageRow(None, None, None, sum(r.exchanges for r in rows), sum(r.errors for r in rows),
                    sum(r.prompt_tokens for r in rows), sum(r.completion_tokens for r in rows),
                    sum(r.cached_tokens for r in rows), sum(r.reasoning_tokens for r in rows),
                    sum((r.cost for r in rows), Decimal(0)), sum(r.unpriced for r in rows))


def _usage_dict(row: UsageRow, by: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(row, name) for name in by}
    out.update(exchanges=row.exchanges, errors=row.errors, prompt_tokens=row.prompt_tokens,
               completion_tokens=row.completion_tokens, cached_tokens=row.cached_tokens,
               reasoning_tokens=row.reasoning_tokens, cost_usd=str(row.cost), unpriced=row.unpriced)
    return out
