"""Words a failure for the terminal: one line that says what happened, plus advice that
names something the user can change (a flag, a config field, their network), and the
exit code. Pure: reads the exception and the loaded config, prints nothing.

    explain(exc, config, debug) -> (lines, exit code)

An `AllAttemptsFailedError` becomes one summary line ("3 attempts failed, each with: …"),
not one line per attempt; `--debug` adds the attempts, one per line. Advice never says
"check base_url" for a URL the user did not set: a built-in URL that does not resolve
is a network problem, not a config one (issue 11, defect 4).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..errors import (
    AllAttemptsFailedError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    HumanError,
    MaxTurnsError,
    StructuredOutputError,
    TruncatedOutputError,
)

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["advice", "explain"]


def explain(exc: BaseException, config: Config | None, *, debug: bool = False) -> tuple[list[str], int]:
    if isinstance(exc, (ConfigError, ValueError, TypeError)) and not isinstance(exc, UnicodeError):
        return [str(exc)], 2
    if isinstance(exc, AllAttemptsFailedError):
        return _summary(exc, config, debug), 1
    if isinstance(exc, StructuredOutputError):
        return _structured(exc, debug), 1
    if isinstance(exc, APIError):
        lines = [_with_advice(str(exc), advice(exc, config))]
        if exc.partial is not None and exc.partial.content:
            lines.append("human: (the partial answer above is incomplete)")
        return lines, 1
    if isinstance(exc, MaxTurnsError):
        turns = len(exc.result.steps)
        return [f"the model still asked for tools after {turns} turns; nothing more was sent — raise the limit "
                "with --chain-limit N (0: no limit)"], 1
    if isinstance(exc, HumanError):
        return [str(exc)], 1
    if isinstance(exc, OSError):
        return [f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": ")], 1
    return [f"internal error: {type(exc).__name__}: {exc} (run with --debug and report it)"], 1


def advice(exc: HumanError, config: Config | None) -> str:
    """What the user can change about this failure, or "" when the message already says."""
    if isinstance(exc, APITimeoutError) and exc.kind == "call":
        return "raise it with --timeout SECONDS (it covers every attempt and wait)"
    if isinstance(exc, APIConnectionError) and exc.reason in ("dns", "tls"):
        where = _users_url(exc.provider or "", config)
        if where is None:
            what = "the host" if exc.reason == "dns" else "a trusted TLS connection"
            return (f"{exc.provider}'s URL is built in, so {what} could not be reached from here: check your "
                    "network connection, DNS and any proxy")
        return f"check base_url (set in {where})" + (": http vs https?" if exc.reason == "tls" else "")
    if isinstance(exc, AuthenticationError) and exc.provider:
        return f"store a new key with `human keys set {exc.provider}`"
    return ""


def _summary(exc: AllAttemptsFailedError, config: Config | None, debug: bool) -> list[str]:
    attempts = exc.attempts
    texts = [str(attempt.error) for attempt in attempts]
    last = attempts[-1].error
    count = len(attempts)
    # Alike when class, status and message match (request ids differ from try to try).
    kinds = {(type(a.error).__name__, getattr(a.error, "status", None), a.error.message) for a in attempts}
    if len(kinds) == 1:
        head = f"{count} attempts failed, each with: {texts[-1]}"
    else:
        tally = Counter(f"{attempt.provider}/{attempt.model}" for attempt in attempts)
        targets = ", ".join(f"{name} ×{times}" for name, times in tally.items())
        head = f"{count} attempts failed ({targets}); the last: {texts[-1]}"
    line = _with_advice(head, advice(last, config))
    if not debug:
        return [line + " (--debug lists each attempt)"]
    return [line] + [f"  {number}. {attempt.provider}/{attempt.model}: {text}"
                     for number, (attempt, text) in enumerate(zip(attempts, texts), 1)]


def _structured(exc: StructuredOutputError, debug: bool) -> list[str]:
    """`--schema` found no answer that fits: the error, and with --debug each answer."""
    head = str(exc).removesuffix(f"; {exc.advice}") if exc.advice else str(exc)
    if isinstance(exc, TruncatedOutputError):
        head = _with_advice(head, "raise it with --max-tokens N")
    else:
        head = _with_advice(head, "a simpler schema or another model may fit")
    if not debug:
        return [head + " (--debug shows each answer)"]
    lines = [head]
    for number, attempt in enumerate(exc.attempts, 1):
        problems = "; ".join(attempt.errors[:3])
        lines.append(f"  {number}. [{attempt.mode}] {problems} — the answer: {attempt.raw!r}")
    return lines


def _with_advice(text: str, hint: str) -> str:
    return f"{text} — {hint}" if hint else text


def _users_url(provider: str, config: Config | None) -> str | None:
    """Where the user set this provider's base URL, or None when it is the registry's."""
    if provider.startswith("custom:"):
        return "the provider name"
    from ..config.registry import lookup

    row = lookup(provider)
    names = row.names if row is not None else (provider,)
    for name in names:
        entry = config.provider_entry(name) if config is not None else None
        if entry and entry.get("base_url"):
            return config.sources.get(f"/providers/{name}/base_url", "your config") if config else "your config"
    return None if row is not None else "your config"
