"""`human batch IN.jsonl -o OUT.jsonl`: every request in a JSONL file, resumable.

On a terminal, stderr shows one live status line (redrawn at most 4 times a second):

    412/1,000 done  3 failed  96.1 req/s  58.2k tokens  $0.0213  ETA 0:06

then a summary. When stderr is not a terminal only the summary is printed (`--json`: as
JSON on stdout). Each request goes into the exchange log (`human logs`) unless `--no-log`
or `human logs off`. Exit status: 0 every line succeeded · 1 some lines failed, or the run
stopped early (rerun to resume) · 2 the input is invalid, nothing was sent · 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import Output

__all__ = ["add_arguments", "run"]


def add_arguments(batch: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The arguments of `human batch` (its line in `human --help` is in cli/__init__.py)."""
    batch.description = ("Send every request in IN.jsonl (OpenAI Batch lines, or {\"custom_id\", \"messages\", …}) "
                         "and write one OpenAI Batch output line per request to OUT.jsonl as each finishes. "
                         "Run the same command again to resume: only requests without a result are sent.")
    batch.add_argument("input", metavar="IN.jsonl", help="the requests, one JSON object a line")
    batch.add_argument("-o", "--output", required=True, metavar="OUT.jsonl",
                       help="the results (appended to; what it holds already is not sent again)")
    batch.add_argument("-p", "--provider", help="provider name, 'compatible' or 'custom:<url>'")
    batch.add_argument("-m", "--model", help="the model for lines that name none")
    batch.add_argument("--concurrency", type=int, default=16, metavar="N", help="requests in flight (default 16)")
    batch.add_argument("--rpm", type=float, metavar="R", help="at most R requests a minute, evenly spread")
    batch.add_argument("--tpm", type=float, metavar="T", help="at most T tokens a minute (estimated, then settled)")
    batch.add_argument("--retry-failed", action="store_true", help="send the failed lines of OUT.jsonl again too")
    batch.add_argument("--skip-invalid", action="store_true",
                       help="send the valid lines even if some are malformed or repeat a custom_id")
    batch.add_argument("--errors", metavar="ERR.jsonl", help="also write the failure lines here at the end")
    batch.add_argument("--dry-run", action="store_true",
                       help="check the file and print the count, models, tokens and cost estimate; send nothing")
    batch.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    batch.add_argument("--timeout", type=float, help="timeout per request in seconds")
    batch.add_argument("--no-log", action="store_true",
                       help="do not put the requests in the exchange log (see `human logs off`)")


def run(args: argparse.Namespace, out: Output) -> int:
    from ..batching import BatchProgress
    from ..batching.api import batch
    from ..config import load_config
    from ..errors import BatchStoppedError
    from .chat import collect_secrets
    from .logs import log_path, logging_on

    config = load_config(args.config)
    out.config = config
    collect_secrets(config, out)
    live = out.terminal and not args.dry_run
    # Every request goes into the exchange log, as every `human chat` exchange does (issue 12).
    log = False if args.no_log or args.dry_run or not logging_on(config.env) else log_path(config.env)

    def progress(snapshot: BatchProgress) -> None:
        if live:
            out.status(progress_line(snapshot))

    try:
        summary = batch(
            args.input, args.output, concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm,
            retry_failed=args.retry_failed, skip_invalid=args.skip_invalid, dry_run=args.dry_run,
            errors=args.errors, progress=progress, provider=args.provider, model=args.model, config=config,
            timeout=args.timeout, log=log)
    except BatchStoppedError as exc:
        _print_summary(exc.summary, args, out)
        out.error(f"human: error: {exc}")
        return 1
    except KeyboardInterrupt:
        out.clear_status()
        out.info("human: interrupted; every result so far is in the output: run the same command again to resume")
        return 130
    if args.dry_run:
        if args.json:
            out.json(summary.to_dict())
        else:
            out.line(dry_run_text(summary))
        return 0
    _print_summary(summary, args, out)
    return 0 if summary.failed == 0 and summary.output_failed == 0 else 1


def _print_summary(summary: Any, args: argparse.Namespace, out: Output) -> None:
    out.clear_status()
    if args.json:
        out.json(summary.to_dict())
    else:
        out.info(summary_text(summary))


# ---- text (pure) -----------------------------------------------------------------------


def progress_line(p: Any) -> str:
    """`412/1,000 done  3 failed  96.1 req/s  58.2k tokens  $0.0213  ETA 0:06`"""
    parts = [f"{p.done:,}/{p.total:,} done"]
    if p.failed:
        parts.append(f"{p.failed:,} failed")
    parts.append(f"{p.rate:,.1f} req/s")
    parts.append(f"{_short(p.prompt_tokens + p.completion_tokens)} tokens")
    parts.append(_money(p.cost, p.unpriced, p.succeeded))
    if p.paused > 0:
        parts.append(f"paused {p.paused:.0f}s (rate limited)")
    elif p.waiting:
        parts.append(f"{p.waiting:,} waiting (rate limited)")
    parts.append("ETA " + ("?" if p.eta is None else _clock(p.eta)))
    return "  ".join(parts)


def summary_text(s: Any) -> str:
    lines = [f"human batch: {s.output_succeeded:,} of {s.lines:,} lines succeeded"
             + (f", {s.output_failed:,} failed (their errors are in {s.output}; --retry-failed sends them again)"
                if s.output_failed else "")
             + (f", {s.pending:,} still to do" if s.pending else "")
             + (f", {s.invalid:,} invalid and skipped" if s.invalid else "")]
    if s.sent:
        lines.append(f"  this run: {s.sent:,} sent in {_clock(s.elapsed)} ({s.rate:,.1f} req/s); "
                     f"{s.succeeded:,} succeeded, {s.failed:,} failed; {s.prompt_tokens + s.completion_tokens:,} "
                     f"tokens ({s.prompt_tokens:,} in, {s.completion_tokens:,} out); "
                     f"{_money(s.cost, s.unpriced, s.succeeded)}")
    else:
        lines.append("  this run: nothing sent")
    if s.already_done:
        lines.append(f"  {s.already_done:,} lines were already done before this run (not sent again)")
    if s.rate_limited:
        lines.append(f"  {s.rate_limited:,} answers were 429 (rate limited): sends paused as the server asked, "
                     "the requests sent again")
    if s.repaired_bytes:
        lines.append(f"  the output's last line was torn by an interrupted run: {s.repaired_bytes:,} bytes cut, "
                     "its request sent again")
    if s.retried_failures:
        lines.append(f"  {s.retried_failures:,} failed lines were sent again (--retry-failed)")
    lines.append(f"  output: {s.output_prompt_tokens + s.output_completion_tokens:,} tokens, "
                 f"{_money(s.output_cost, s.output_unpriced, s.output_succeeded)} in all")
    return "\n".join(lines)


def dry_run_text(s: Any) -> str:
    to_send = sum(model["requests"] for model in s.estimate["models"].values())
    lines = [f"{s.lines:,} lines: {to_send:,} to send, {s.already_done:,} already done, {s.invalid:,} invalid"]
    total_prompt = total_limit = 0.0
    priced = True
    for name, m in sorted(s.estimate["models"].items()):
        bound = f"output up to {m['completion_limit']:,} tokens" if m["completion_limit"] else "output not bounded"
        if m["without_limit"] and m["completion_limit"]:
            bound += f" ({_count(m['without_limit'], 'line sets', 'lines set')} no max_tokens)"
        lines.append(f"  {name} ({m['provider']}): {m['requests']:,} requests, ~{m['prompt_tokens']:,} input "
                     f"tokens, {bound}")
        if m["prompt_cost"] is None:
            priced = False
        else:
            total_prompt += m["prompt_cost"]
            total_limit += m["completion_limit_cost"] or 0.0
    if not s.estimate["models"]:
        lines.append("  nothing to send")
    elif priced:
        lines.append(f"  estimated cost: {_usd(total_prompt)} for the input"
                     + (f" + up to {_usd(total_limit)} for the output" if total_limit else ""))
    else:
        lines.append("  estimated cost: unknown (no price for some of these models)")
    return "\n".join(lines)


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def _short(number: int) -> str:
    if number >= 1_000_000:
        return f"{number / 1_000_000:.2f}M"
    if number >= 10_000:
        return f"{number / 1000:.1f}k"
    return f"{number:,}"


def _money(cost: float, unpriced: int, answered: int) -> str:
    if answered and unpriced == answered:
        return "cost unknown"
    return _usd(cost) + (f" (+{unpriced:,} unpriced)" if unpriced else "")


def _usd(amount: float) -> str:
    """Cents from a dollar up, six decimals below (a batch of cheap calls costs fractions
    of a cent): "$12.35", "$0.000285", "$0.00"."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    text = f"{amount:.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
