"""The input file, read streaming: a first pass that checks every line before anything is
sent (wave2.md E.2.1: duplicate `custom_id`s hung SGLang's batch API, sglang#1415), and
the second pass that yields the requests still to send.

Memory grows with the number of distinct `custom_id`s (a set, for duplicates), never with
the size of the requests: each line is parsed, counted and dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .lines import Done, LineError, Request, parse_input

__all__ = ["ModelEstimate", "Scan", "pending", "scan"]

MAX_PROBLEMS = 1000  # kept with their text; more are only counted


@dataclass
class ModelEstimate:
    """The requests still to send for one model: how many, and their estimated tokens."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_limit: int = 0  # the sum of max_tokens, where lines set one
    without_limit: int = 0  # lines with no max_tokens (their output is not bounded)


@dataclass
class Scan:
    """What the first pass found."""

    lines: int = 0  # non-blank lines
    valid: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    problem_count: int = 0
    duplicates: set[str] = field(default_factory=set)
    invalid_lines: set[int] = field(default_factory=set)  # every line with a problem, by number
    conflicts: list[tuple[int, str]] = field(default_factory=list)  # results made from other requests
    already_done: int = 0
    to_send: int = 0
    models: dict[str, ModelEstimate] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)  # ids in the output but not in the input (a sample)
    orphan_count: int = 0

    def problem(self, line: int, message: str) -> None:
        self.problem_count += 1
        self.invalid_lines.add(line)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((line, message))

    @property
    def prompt_tokens(self) -> int:
        return sum(estimate.prompt_tokens for estimate in self.models.values())


def scan(path: Path, done: Mapping[str, Done], default_model: str | None, *, estimate: bool = False,
         exclude: frozenset[str] = frozenset()) -> Scan:
    """Check every line of `path`. `done` is what the output already holds; `exclude` are
    ids left out of the counts (duplicates being skipped); `estimate` counts tokens too."""
    result = Scan()
    first_line: dict[str, int] = {}
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            if not raw.strip():
                continue
            result.lines += 1
            try:
                request = parse_input(raw, number, estimate=estimate)
            except LineError as exc:
                result.problem(number, f"line {number} {exc}")
                continue
            cid = request.custom_id
            seen = first_line.get(cid)
            if seen is not None:
                result.duplicates.add(cid)
                result.problem(number, f"line {number} repeats custom_id {cid!r} (first on line {seen})")
                continue
            first_line[cid] = number
            if cid in exclude:
                continue
            model = request.model or default_model
            if model is None:
                result.problem(number, f"line {number} has no \"model\" and no default model is set "
                                       "(add one to the line, pass --model, or set default_model)")
                continue
            result.valid += 1
            finished = done.get(cid)
            if finished is not None:
                if finished.fingerprint is not None and finished.fingerprint != request.fingerprint:
                    result.conflicts.append((number, cid))
                result.already_done += 1
                continue
            result.to_send += 1
            _count(result.models.setdefault(model, ModelEstimate()), request)
    for cid in done:
        if cid not in first_line:
            result.orphan_count += 1
            if len(result.orphans) < 5:
                result.orphans.append(cid)
    return result


def _count(estimate: ModelEstimate, request: Request) -> None:
    estimate.requests += 1
    tokens = request.estimate
    if tokens is None:
        return
    estimate.prompt_tokens += tokens.prompt
    if tokens.completion is None:
        estimate.without_limit += 1
    else:
        estimate.completion_limit += tokens.completion


def pending(path: Path, done: Mapping[str, Done], found: Scan, *, estimate: bool = False) -> Iterator[Request]:
    """The second pass: the requests not yet in the output, in file order. The lines the
    first pass found invalid, and every line of a repeated id, are passed over; the rest
    are taken apart without being checked again."""
    invalid, duplicates = found.invalid_lines, found.duplicates
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            if number in invalid or not raw.strip():
                continue
            try:
                request = parse_input(raw, number, check=False, estimate=estimate)
            except LineError:  # the file changed since it was checked: leave the line for a rerun
                continue
            if request.custom_id in done or request.custom_id in duplicates:
                continue
            yield request
