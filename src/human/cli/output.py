"""Everything the CLI prints goes through `Output`: it scrubs secrets, keeps stdout for
answers and stderr for everything else, and turns exceptions into one actionable line."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, TextIO

from ..core.secret import scrub
from ..errors import AllAttemptsFailedError, APIError, ConfigError, HumanError


class Output:
    def __init__(self, debug: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.debug = debug
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        for stream in (self.stdout, self.stderr):
            # A terminal that cannot show a character gets a replacement, not a crash.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")
        self.secrets: list[str] = []
        self._midline = False

    def add_secrets(self, *values: str | None) -> None:
        self.secrets.extend(value for value in values if value)

    def clean(self, text: str) -> str:
        return scrub(text, *self.secrets)

    def write(self, text: str) -> None:
        """Part of an answer (no newline added)."""
        if not text:
            return
        self.stdout.write(self.clean(text))
        self.stdout.flush()
        self._midline = not text.endswith("\n")

    def line(self, text: str = "") -> None:
        self.stdout.write(self.clean(text) + "\n")
        self._midline = False

    def json(self, value: Any) -> None:
        self.line(json.dumps(value, indent=2, ensure_ascii=False))

    def info(self, text: str) -> None:
        self.stderr.write(self.clean(text) + "\n")
        self.stderr.flush()

    def newline_if_needed(self) -> None:
        if self._midline:
            self.stdout.write("\n")
            self.stdout.flush()
            self._midline = False

    def fail(self, exc: BaseException) -> int:
        """Print one line (a few for a list of attempts) and return the exit code."""
        self.newline_if_needed()
        if self.debug:
            self.stderr.write(self.clean("".join(traceback.format_exception(exc))))
        if isinstance(exc, (ConfigError, ValueError, TypeError)) and not isinstance(exc, UnicodeError):
            self.info(f"human: error: {exc}")
            return 2
        if isinstance(exc, AllAttemptsFailedError):
            self.info(f"human: error: {exc}")
            return 1
        if isinstance(exc, APIError):
            self.info(f"human: error: {exc}")
            if exc.partial is not None and exc.partial.content:
                self.info("human: (the partial answer above is incomplete)")
            return 1
        if isinstance(exc, HumanError):
            self.info(f"human: error: {exc}")
            return 1
        if isinstance(exc, OSError):
            self.info(f"human: error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "))
            return 1
        self.info(f"human: internal error: {type(exc).__name__}: {exc} (run with --debug and report it)")
        return 1
