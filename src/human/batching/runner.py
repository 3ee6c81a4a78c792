"""Runs a batch through an `AsyncClient`: check the whole input, then send what the output
does not hold yet, within the limits, writing each result as it arrives.

`--concurrency` workers share the input, read a line at a time: each takes the next
line, waits for the rate limiter and the adaptive window, sends the request with the
client's retries, fallbacks and circuit breaker, and writes its line; a ticker draws
progress and fsyncs. Results are keyed by `custom_id` and written in the order they
finish, never by position (wave2.md E.2.2: providers return batches out of order, one
even under the wrong keys at 10K+ requests, googleapis/python-genai#1909).

What happens to a failed request is decided in `control.py`; the output file's rules
are in `ledger.py`; the line formats in `lines.py`.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.limiter import Limiter
from ..core.retry import Send, Sleep
from ..errors import BatchInputError, BatchStoppedError, ConfigError, HumanError, RateLimitError
from .control import MAX_PAUSE_S, Throttle, decide
from .ledger import Ledger
from .lines import Done, Request, failure_line, success_line
from .scan import Scan, pending, scan
from .seams import estimate_cost, response_cost
from .summary import BatchProgress, BatchSummary, Meter

if TYPE_CHECKING:
    from ..config import Config, Target
    from ..types import ChatResponse

__all__ = ["BatchClient", "BatchOptions", "run"]


class BatchClient(Protocol):
    """What the runner uses of an `AsyncClient` (a Protocol, so this package, which sits
    above the client, does not import it: `AsyncClient.batch` imports this one)."""

    _progress: Callable[[Send | Sleep], None] | None
    config: Config

    def target(self, provider: str | None = None, model: str | None = None, *, require_key: bool = True,
               discover: bool = True) -> Target: ...

    async def chat(self, messages: Any, *, model: str | None = None, **options: Any) -> ChatResponse: ...


Progress = Callable[[BatchProgress], None]
MAX_SHOWN = 20  # problems listed in the error message; all are in .problems
# (the run, the throttle epoch its request was sent in), inside a worker's `client.chat`:
# lets the client's progress hook tell this run's 429s from anyone else's.
_SENDING: contextvars.ContextVar[tuple[object, int] | None] = contextvars.ContextVar("human_batch", default=None)


@dataclass(frozen=True, slots=True)
class BatchOptions:
    concurrency: int = 16
    rpm: float | None = None
    tpm: float | None = None
    retry_failed: bool = False
    skip_invalid: bool = False
    dry_run: bool = False
    errors: str | Path | None = None  # also write the failure lines here (rewritten at the end)
    max_pause: float = MAX_PAUSE_S  # a 429 asking to wait longer stops the run instead
    max_strikes: int = 10  # rate-limited rounds in a row, with no success between, before the run stops
    progress: Progress | None = None
    progress_interval: float = 0.25  # at most 4 redraws a second


async def run(client: BatchClient, source: str | Path, output: str | Path,
              options: BatchOptions = BatchOptions()) -> BatchSummary:
    """Run (or, with `dry_run`, only check and estimate) the batch in `source`, writing to
    `output`. Raises `BatchInputError` before sending anything when a line is bad,
    `BatchStoppedError` when the run ends early (resumable)."""
    if options.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {options.concurrency}")
    limiter = Limiter.pacing(rpm=options.rpm, tpm=options.tpm)  # checks them before any file is touched
    source = Path(source)
    if not source.is_file():
        raise BatchInputError(f"no input file {source}", path=str(source))
    _distinct(source, Path(output), None if options.errors is None else Path(options.errors))
    default_model = _default_model(client, options.dry_run)  # a line's own "model" wins
    # Reading the output and checking the input take seconds for a big file: off the event
    # loop, so whatever else runs on it (the caller's own tasks) is not held up.
    ledger = await asyncio.to_thread(Ledger.open, output, write=not options.dry_run)
    try:
        done = ledger.done
        if options.retry_failed:  # failures count as not done (dropped from the file once checked)
            done = {cid: line for cid, line in done.items() if line.ok}
        try:
            found = await asyncio.to_thread(_check, source, output, done, default_model, options)
            estimate = _estimate(client, found, options.dry_run)
        except BaseException:
            ledger.discard()
            raise
        if options.dry_run:
            return _summary(source, ledger, found, _Counts(), 0.0, estimate, dry_run=True)
        retried = ledger.drop_failures() if options.retry_failed else 0
        batch = _Run(client, ledger, found, options, limiter)
        await batch.go(pending(source, ledger.done, found, estimate=options.tpm is not None))
        if options.errors is not None:
            ledger.write_failures(options.errors)
        summary = _summary(source, ledger, found, batch.counts, batch.elapsed, estimate, stopped=batch.stopped,
                           retried=retried)
    finally:
        ledger.close()
    if batch.crashed is not None:
        raise batch.crashed
    if batch.stopped is not None:
        raise BatchStoppedError(
            f"the batch stopped: {batch.stopped}; {summary.pending} of {found.lines} lines are still to do. "
            "Every result so far is in the output: run the same command again to resume",
            summary=summary, cause=batch.cause)
    return summary


def _distinct(source: Path, output: Path, errors: Path | None) -> None:
    """The three files must be three: the errors file is rewritten whole at the end."""
    named = {"the input": source, "the output": output}
    if errors is not None:
        named["the errors file"] = errors
    seen: dict[Path, str] = {}
    for role, path in named.items():
        real = path.resolve()
        if real in seen:
            raise ValueError(f"{seen[real]} and {role} are the same file ({path}); name another")
        seen[real] = role


def _default_model(client: BatchClient, dry_run: bool) -> str | None:
    """The model for lines that name none. With nothing configured, a real run looks for a
    local server (the client's zero-config start) and takes the model it serves; a dry run
    never does. None when there is none: lines without a model are then reported."""
    try:
        return client.target(require_key=False, discover=not dry_run).model
    except ConfigError:  # no model (or no provider) yet: each line's target is resolved later
        return None


def _check(source: Path, output: str | Path, done: dict[str, Done], default_model: str | None,
           options: BatchOptions) -> Scan:
    """The first pass, and the errors that stop the run before anything is sent."""
    found = scan(source, done, default_model, estimate=options.dry_run)
    if found.duplicates and options.skip_invalid:  # counted again without any duplicated id
        again = scan(source, done, default_model, estimate=options.dry_run, exclude=frozenset(found.duplicates))
        again.duplicates, again.invalid_lines = found.duplicates, found.invalid_lines | again.invalid_lines
        found = again
    if found.conflicts:
        lines = ", ".join(f"line {number} ({cid!r})" for number, cid in found.conflicts[:5])
        raise BatchInputError(
            f"{output} holds results for {len(found.conflicts)} request(s) that have changed since: {lines}. "
            "They belong to another version of the input: write to a new output file",
            path=str(output), problems=tuple((number, f"changed since its result was written: {cid!r}")
                                             for number, cid in found.conflicts))
    if found.orphan_count:
        sample = ", ".join(repr(cid) for cid in found.orphans)
        raise BatchInputError(
            f"{output} holds results for {found.orphan_count} custom_id(s) that are not in {source} "
            f"(e.g. {sample}): it is the output of another input; choose another output file",
            path=str(output))
    if found.problem_count and not options.skip_invalid:
        shown = "\n".join(f"  {message}" for _, message in found.problems[:MAX_SHOWN])
        more = found.problem_count - min(len(found.problems), MAX_SHOWN)
        raise BatchInputError(
            f"{source}: {found.problem_count} of {found.lines} lines cannot be sent; nothing was sent:\n{shown}"
            + (f"\n  … and {more} more" if more > 0 else "")
            + "\nFix them, or pass --skip-invalid (skip_invalid=True) to send the others",
            path=str(source), problems=tuple(found.problems))
    return found


def _estimate(client: BatchClient, found: Scan, dry_run: bool) -> dict[str, Any]:
    """Per model: requests, estimated tokens and (when prices are known) cost. Resolving
    each model's target here also fails fast on a missing key or provider."""
    models: dict[str, Any] = {}
    for model, counts in found.models.items():
        target = client.target(model=model, require_key=not dry_run, discover=not dry_run)
        if not dry_run:  # tokens are counted only for a dry run (it costs a pass over every message)
            models[model] = {"provider": target.provider, "requests": counts.requests}
            continue
        prompt_cost = estimate_cost(client.config, target, counts.prompt_tokens, 0)
        limit_cost = estimate_cost(client.config, target, 0, counts.completion_limit)
        models[model] = {
            "provider": target.provider,
            "requests": counts.requests,
            "prompt_tokens": counts.prompt_tokens,
            "completion_limit": counts.completion_limit,
            "without_limit": counts.without_limit,
            "prompt_cost": prompt_cost,
            "completion_limit_cost": limit_cost,
        }
    return {"models": models}


@dataclass
class _Counts:
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0
    rate_limited: int = 0


class _Run:
    """The state of one run: the dispatcher, its tasks, the limits, the counts."""

    def __init__(self, client: BatchClient, ledger: Ledger, found: Scan, options: BatchOptions,
                 limiter: Limiter) -> None:
        self.client, self.ledger, self.found, self.options = client, ledger, found, options
        self.limiter = limiter
        self.throttle = Throttle(options.concurrency, max_strikes=options.max_strikes)
        self.counts = _Counts()
        self.waiting: deque[Request] = deque()  # rate-limited, to go again
        self.in_flight = 0
        self.stopped: str | None = None
        self.cause: HumanError | None = None
        self.crashed: BaseException | None = None
        self.elapsed = 0.0
        self._wake = asyncio.Event()
        self._gate = asyncio.Lock()
        self._requests: Iterator[Request] = iter(())
        self._prefix = f"batch_req_{secrets.token_hex(6)}"
        self._number = 0
        self._completion_guess = 0.0  # the mean completion tokens so far, for TPM reservations
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._meter = Meter(self._started)

    async def go(self, requests: Iterator[Request]) -> None:
        """`concurrency` workers, each taking the next line when it is free: no task per
        request, and a free worker goes straight on with the next one."""
        self._requests = requests
        client = self.client
        previous = client._progress
        client._progress = self._observer(previous)
        ticker = self._loop.create_task(self._tick())
        try:
            await asyncio.gather(*(self._worker() for _ in range(self.options.concurrency)))
        finally:
            client._progress = previous
            ticker.cancel()
            self.elapsed = self._loop.time() - self._started
            self._report()

    def _observer(self, previous: Callable[[Send | Sleep], None] | None) -> Callable[[Send | Sleep], None]:
        """The client's progress hook for the run: a 429 that the client is about to wait
        out inside one request pauses every other send too, at once (the request itself
        retries after Retry-After as usual). Any hook already set is still called."""

        def observe(action: Send | Sleep) -> None:
            if previous is not None:
                previous(action)
            if isinstance(action, Sleep) and isinstance(action.error, RateLimitError):
                sending = _SENDING.get()
                if sending is not None and sending[0] is self:
                    self.counts.rate_limited += 1
                    now = self._loop.time()
                    self.limiter.pause(self.throttle.refused(action.error.retry_after, sending[1]), now)

        return observe

    async def _worker(self) -> None:
        waiting = self.waiting
        while self.stopped is None:
            # Lines sent back by a 429 go first. A worker leaves when there is nothing left
            # to take: a line refused later is sent again by the worker that got the refusal.
            request = waiting.popleft() if waiting else next(self._requests, None)
            if request is None:
                return
            estimate = request.estimate
            reserve = 0 if estimate is None else estimate.reserve(int(self._completion_guess))
            if not await self._admit(reserve):
                return  # stopped: the line stays undone, for a rerun
            self.in_flight += 1
            try:
                await self._send(request, reserve, self.throttle.epoch)
            finally:
                self.in_flight -= 1
                self._wake.set()

    async def _admit(self, reserve: int) -> bool:
        """Wait until this request may go: a place in the window and room in the limits.
        One worker at a time waits (the gate), so a paced run wakes one worker per
        request, not all of them. False if the run stopped meanwhile."""
        throttle, limiter, loop = self.throttle, self.limiter, self._loop
        if self.in_flight < throttle.allowed and limiter.acquire(reserve, loop.time()) <= 0:
            return True
        async with self._gate:
            while self.stopped is None:
                if self.in_flight >= throttle.allowed:
                    await self._wait()
                    continue
                wait = limiter.acquire(reserve, loop.time())
                if wait <= 0:
                    return True
                await self._wait(wait)
        return False

    async def _wait(self, seconds: float | None = None) -> None:
        """Until a request finishes or the run stops (or `seconds` have passed)."""
        wake = self._wake
        wake.clear()
        if seconds is None:
            await wake.wait()
            return
        timer = self._loop.call_later(seconds, wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()

    async def _send(self, request: Request, reserve: int, epoch: int) -> None:
        started = self._loop.time()
        _SENDING.set((self, epoch))  # this worker's own context: no reset needed
        try:
            response = await self.client.chat(request.messages, model=request.model, **request.options)
        except HumanError as exc:
            self._failed(request, reserve, exc, started, epoch)
        except Exception as exc:  # a bug, not a failed request: end the run and raise it
            self.crashed = exc
            self._stop("an unexpected error", None)
        else:
            self._answered(request, reserve, response, started)

    def _answered(self, request: Request, reserve: int, response: ChatResponse, started: float) -> None:
        now = self._loop.time()
        counts = self.counts
        cost = response_cost(response)
        usage = response.usage
        prompt = (usage.prompt_tokens or 0) if usage else 0
        completion = (usage.completion_tokens or 0) if usage else 0
        extra: dict[str, Any] = {"provider": response.provider, "attempt": response.attempt,
                                 "ms": round((now - started) * 1000)}
        if usage is not None:
            extra["prompt_tokens"] = prompt
            extra["completion_tokens"] = completion
        extra["cost"] = cost
        body = response.raw if response.raw is not None else response.to_dict()
        self.ledger.append(success_line(self._id(), request, body, extra),
                           Done(request.custom_id, True, request.fingerprint, prompt, completion, cost))
        counts.sent += 1
        counts.succeeded += 1
        counts.prompt_tokens += prompt
        counts.completion_tokens += completion
        if cost is None:
            counts.unpriced += 1
        else:
            counts.cost += cost
        used = (usage.total_tokens or prompt + completion) if usage else None
        self.limiter.refund(reserve, used, now)
        self._completion_guess += (completion - self._completion_guess) / counts.succeeded
        self.throttle.success()

    def _failed(self, request: Request, reserve: int, error: HumanError, started: float, epoch: int) -> None:
        now = self._loop.time()
        self.limiter.refund(reserve, 0, now)  # refused or failed: not counted against the limit
        decision = decide(error, max_pause=self.options.max_pause)
        if decision.verdict == "stop":
            self._stop(decision.reason, error)
            return
        if decision.verdict == "requeue":
            self.counts.rate_limited += 1
            self.limiter.pause(self.throttle.refused(decision.retry_after, epoch), now)
            if self.throttle.exhausted:
                self._stop(f"the provider refused {self.throttle.strikes} times in a row with no success "
                           f"({decision.reason})", error)
            else:
                self.waiting.append(request)
            return
        extra = {"ms": round((now - started) * 1000)}
        self.ledger.append(failure_line(self._id(), request, error, extra),
                           Done(request.custom_id, False, request.fingerprint, 0, 0, None))
        self.counts.sent += 1
        self.counts.failed += 1

    def _stop(self, reason: str, cause: HumanError | None) -> None:
        if self.stopped is None:
            self.stopped, self.cause = reason, cause
        self._wake.set()

    def _id(self) -> str:
        self._number += 1
        return f"{self._prefix}{self._number:06x}"

    async def _tick(self) -> None:
        ledger = self.ledger
        while True:
            await asyncio.sleep(self.options.progress_interval)
            now = self._loop.time()
            if ledger.sync_due(now):
                await asyncio.to_thread(ledger.sync, now)
            self._report()

    def _report(self) -> None:
        if self.options.progress is None:
            return
        now = self._loop.time()
        counts = self.counts
        finished = counts.succeeded + counts.failed
        rate = self._meter.update(finished, now)
        self.options.progress(BatchProgress(
            total=self.found.to_send, done=finished, succeeded=counts.succeeded, failed=counts.failed,
            in_flight=self.in_flight, waiting=len(self.waiting), prompt_tokens=counts.prompt_tokens,
            completion_tokens=counts.completion_tokens, cost=counts.cost, unpriced=counts.unpriced,
            elapsed=now - self._started, rate=rate, eta=self._meter.eta(self.found.to_send - finished),
            paused=max(0.0, self.limiter.paused_until - now)))


def _summary(source: Path, ledger: Ledger, found: Scan, counts: _Counts, elapsed: float,
             estimate: dict[str, Any], *, dry_run: bool = False, stopped: str | None = None,
             retried: int = 0) -> BatchSummary:
    totals = ledger.totals
    return BatchSummary(
        input=str(source), output=str(ledger.path), lines=found.lines, invalid=found.problem_count,
        already_done=found.already_done, sent=counts.sent, succeeded=counts.succeeded, failed=counts.failed,
        pending=found.to_send - counts.succeeded - counts.failed, prompt_tokens=counts.prompt_tokens,
        completion_tokens=counts.completion_tokens, cost=counts.cost, unpriced=counts.unpriced,
        rate_limited=counts.rate_limited, elapsed=elapsed, output_succeeded=totals.succeeded,
        output_failed=totals.failed, output_prompt_tokens=totals.prompt_tokens,
        output_completion_tokens=totals.completion_tokens, output_cost=totals.cost,
        output_unpriced=totals.unpriced, repaired_bytes=ledger.repaired, retried_failures=retried,
        stopped=stopped, dry_run=dry_run, estimate=estimate)
