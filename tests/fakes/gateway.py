"""ServeProcess: the real `freegin-ai serve` in a subprocess, on 127.0.0.1 and a free port.

It runs in its own data and config directories with no provider key from the environment
but the ones given, and prints its address on stderr once it listens; `cli()` runs other
commands against the same database, as a person would while the gateway runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "freegin-ai"
_LISTENING = re.compile(r"listening on (http://\S+)")


def clean_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without FREEGIN_ settings or provider keys, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    for name in list(env):
        if name.endswith(("_API_KEY", "_TOKEN")):
            del env[name]
    env |= {"FREEGIN_DATA_DIR": str(data_dir), "FREEGIN_CONFIG_DIR": str(data_dir / "config")}
    return env | (extra or {})


class ServeProcess:
    """`freegin-ai serve --port 0 ARGS` with `env`; `url` is known once it listens."""

    def __init__(self, data_dir: Path, env: dict[str, str], *args: str) -> None:
        self.data_dir = data_dir
        self.env = clean_env(data_dir, env)
        self.args = args
        self.url = ""
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._drained = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60) -> ServeProcess:
        self._process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", "0", *self.args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(timeout) or not self.url:
            self.stop()
            raise AssertionError(f"serve did not start:\n{self.output}")
        return self

    def _drain(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.append(line)
            found = _LISTENING.search(line)
            if found and not self.url:
                self.url = found.group(1)
                self._ready.set()
        self._ready.set()
        self._process.stdout.close()
        self._drained.set()

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as `base_url`."""
        return f"{self.url}/v1"

    @property
    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return "".join(self._lines)

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None
        return self._process

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the exit (and for its last words); returns the exit code."""
        code = self.process.wait(timeout)
        self._drained.wait(5)
        return code

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped after 30 s."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Another freegin-ai command on the same database and configuration."""
        return subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
