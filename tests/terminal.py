"""A command on a pseudo-terminal, driven like a person at a keyboard (stdlib ``pty`` only)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path


class Terminal:
    """A command on a pseudo-terminal, read until a pattern shows (the waits are generous, not measured)."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        main, child = os.openpty()
        self.fd = main
        self.process = subprocess.Popen(
            command, cwd=cwd, stdin=child, stdout=child, stderr=child, start_new_session=True, close_fds=True
        )
        os.close(child)
        self.text = ""

    def expect(self, pattern: str, timeout: float = 90.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text)
            if found:
                self.text = self.text[found.end() :]
                return found
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in the terminal; it shows:\n{self.text}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the command ended: the terminal is closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the command ended without {pattern!r}; it showed:\n{self.text}")
                self.text += chunk.decode(errors="replace").replace("\r\n", "\n")

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int:
        code = self.process.wait(timeout=120)
        os.close(self.fd)
        return code
