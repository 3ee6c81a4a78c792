"""Run `human` on a pseudo-terminal, as a person at a terminal would: stdin, stdout and
stderr are the terminal (or stdout alone a pipe, to tell the two apart), with a window
size, and every byte the program writes is kept, escape sequences included."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path


class Terminal:
    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                 columns: int = 100, stdout_pipe: bool = False) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "human", *args], stdin=follower,
            stdout=subprocess.PIPE if stdout_pipe else follower, stderr=follower,
            env={**os.environ, "TERM": "xterm", **(env or {})}, cwd=cwd, start_new_session=True)
        os.close(follower)
        self.seen = b""

    def _read(self, seconds: float) -> None:
        if select.select([self.leader], [], [], seconds)[0]:
            try:
                self.seen += os.read(self.leader, 65536)
            except OSError:  # the program ended and closed the terminal
                pass

    def expect(self, marker: bytes | str, seconds: float = 15) -> None:
        marker = marker.encode() if isinstance(marker, str) else marker
        deadline = time.monotonic() + seconds
        while marker not in self.seen and time.monotonic() < deadline:
            self._read(0.05)
        assert marker in self.seen, self.seen.decode(errors="replace")

    def send(self, text: str) -> None:
        os.write(self.leader, text.encode())

    def finish(self, seconds: float = 15) -> int:
        """Wait for the program to end; read what is left; return its exit code."""
        try:
            code = self.process.wait(timeout=seconds)
        finally:
            self.process.kill()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and select.select([self.leader], [], [], 0.1)[0]:
            before = len(self.seen)
            self._read(0.1)
            if len(self.seen) == before:
                break
        os.close(self.leader)
        return code

    @property
    def text(self) -> str:
        return self.seen.decode(errors="replace")
