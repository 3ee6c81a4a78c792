"""Everything the CLI prints goes through `Output`: it scrubs secrets, keeps stdout for
answers and stderr for everything else, prints each warning once, and turns exceptions
into one actionable line (`explain.py` words it).

On a terminal, and only there: errors are red, reasoning and tool calls are dimmed (unless NO_COLOR
is set, https://no-color.org), and a transient status line ("waiting for groq…",
"rate limited, retrying in 2.0 s (attempt 2/3)") stands on stderr until the next thing
is printed, which first erases it. Piped output gets none of these bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from ..core.secret import scrub
from .explain import explain

if TYPE_CHECKING:
    from ..config import Config

RED, DIM, RESET = "\x1b[31m", "\x1b[2m", "\x1b[0m"
ERASE = "\r\x1b[2K"  # to the start of the line, then clear it (ECMA-48 EL 2)


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Output:
    def __init__(self, debug: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.debug = debug
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        for stream in (self.stdout, self.stderr):
            # A terminal that cannot show a character gets a replacement, not a crash.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")
        env = os.environ if env is None else env
        self.terminal = _is_tty(self.stderr)
        self.colour = self.terminal and not env.get("NO_COLOR")
        self.secrets: list[str] = []
        self.config: Config | None = None  # set by a command once loaded: errors' advice reads it
        self._midline = False
        self._status = False
        self._said: set[str] = set()

    def add_secrets(self, *values: str | None) -> None:
        self.secrets.extend(value for value in values if value)

    def clean(self, text: str) -> str:
        return scrub(text, *self.secrets)

    # ---- stdout ----------------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Part of an answer (no newline added)."""
        if not text:
            return
        self.clear_status()
        self.stdout.write(self.clean(text))
        self.stdout.flush()
        self._midline = not text.endswith("\n")

    def line(self, text: str = "") -> None:
        self.clear_status()
        self.stdout.write(self.clean(text) + "\n")
        self._midline = False

    def json(self, value: Any) -> None:
        self.line(json.dumps(value, indent=2, ensure_ascii=False))

    def newline_if_needed(self) -> None:
        if self._midline:
            self.stdout.write("\n")
            self.stdout.flush()
            self._midline = False

    # ---- stderr ----------------------------------------------------------------------------

    def info(self, text: str) -> None:
        self.clear_status()
        self.stderr.write(self.clean(text) + "\n")
        self.stderr.flush()

    def once(self, text: str) -> None:
        """A line that is printed at most once per process (warnings, notices)."""
        if text not in self._said:
            self._said.add(text)
            self.info(text)

    def error(self, text: str) -> None:
        self.clear_status()
        self.stderr.write(self._paint(RED, self.clean(text)) + "\n")
        self.stderr.flush()

    def reasoning(self, text: str) -> None:
        """The model's reasoning, as it streams: dimmed on a terminal."""
        if not text:
            return
        self.clear_status()
        self.stderr.write(self._paint(DIM, self.clean(text)))
        self.stderr.flush()

    def dim(self, text: str) -> None:
        """A line on stderr that is not the answer (a tool call and its result): dimmed on
        a terminal, on a line of its own."""
        self.clear_status()
        self.newline_if_needed()
        self.stderr.write(self._paint(DIM, self.clean(text)) + "\n")
        self.stderr.flush()

    def status(self, text: str) -> None:
        """A transient line on a terminal's stderr; nothing at all when stderr is not one."""
        if not self.terminal:
            return
        width = shutil.get_terminal_size((80, 24)).columns
        shown = self.clean(text)
        if len(shown) >= width:
            shown = shown[: max(width - 2, 1)] + "…"
        self.stderr.write(ERASE + self._paint(DIM, shown))
        self.stderr.flush()
        self._status = True

    def clear_status(self) -> None:
        if self._status:
            self._status = False
            self.stderr.write(ERASE)
            self.stderr.flush()

    def _paint(self, colour: str, text: str) -> str:
        return f"{colour}{text}{RESET}" if self.colour and text else text

    # ---- failures --------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> int:
        """Print one line (with --debug: the traceback and every attempt) and return the
        exit code: 2 for a usage or configuration error, 1 for anything else."""
        self.clear_status()
        self.newline_if_needed()
        if self.debug:
            self.stderr.write(self.clean("".join(traceback.format_exception(exc))))
        lines, code = explain(exc, self.config, debug=self.debug)
        for number, text in enumerate(lines):
            if number == 0:
                self.error(f"human: error: {text}")
            else:
                self.info(text)
        return code
