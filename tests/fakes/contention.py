"""Eight `freegin-ai` processes at once: the commands each worker runs, and a runner that
times every command. Shared by the contention test and its benchmark (`make bench`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "freegin-ai"

#: The model every worker adopts, with its own priority: all of them write one stream.
SHARED = "shared-model"


def cli_env(url: str, home: Path, provider_url: str | None = None) -> dict[str, str]:
    """The environment of a CLI process on `url`, with groq at a fake provider."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env["FREEGIN_DATABASE_URL"] = url
    env["FREEGIN_DATA_DIR"] = str(home / "data")
    env["FREEGIN_CONFIG_DIR"] = str(home / "config")
    if provider_url:
        env["FREEGIN_GROQ_BASE_URL"] = provider_url
        env["GROQ_API_KEY"] = "sk-contention"
    return env


def worker_commands(worker: int, rounds: int = 1) -> list[list[str]]:
    """Adopt a model of its own, retire it, adopt the shared one, log usage through it."""
    commands = []
    for r in range(rounds):
        own = f"own-{worker}-{r}"
        commands += [
            ["adopt-model", "groq", own, "--workload", "code", "--priority", str(50 + worker)],
            ["retire-model", "groq", own, "--workload", "code"],
            ["adopt-model", "groq", SHARED, "--workload", "chat", "--priority", str(worker)],
            ["generate", "--provider", "groq", "--model", SHARED, "--prompt", f"w{worker}r{r}"],
        ]
    return commands


def run_command(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run one command: (wall seconds, exit status, stderr)."""
    started = time.perf_counter()
    done = subprocess.run([str(SCRIPT), *command], env=env, capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, done.stderr


def run_workers(
    workers: int, env: dict[str, str], rounds: int = 1
) -> list[tuple[float, int, str, str]]:
    """Every worker runs its commands one after another, all workers at once: (wall seconds,
    exit status, stderr, command name) of each."""
    results: list[tuple[float, int, str, str]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for command in worker_commands(worker, rounds):
            outcome = (*run_command(command, env), command[0])
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
