"""The gateway against LiteLLM's proxy, side by side: `python -m tests.bench.peers_gateway`.

`make bench-peers` runs it with LiteLLM installed in its own environment (.build/peers). Both
gateways sit in front of the same fast fake provider on 127.0.0.1 (tests.bench.fast_server)
with one route, `chat`, to it, and are loaded in turn by the same load generator (`wrk`):

- 32 connections: requests per second (target: freegin-ai at least 10 times LiteLLM's);
- 1 connection: median latency (target: freegin-ai at most a fifth of LiteLLM's);
- no answer other than 2xx from freegin-ai;
- freegin-ai's resident memory over 100,000 requests (target: flat, at most 5 MiB of growth
  after a warm-up of 10,000): VmRSS from /proc/<pid>/status after the warm-up, after every
  tenth of the run and at its end. `--only memory` runs this alone (no LiteLLM needed),
  `--only peers` the comparison alone.

It prints figures and verdicts and never fails on them: the machine is shared, the figures
are what they are in this run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BODY = '{"model": "chat", "messages": [{"role": "user", "content": "Say hello"}]}'
PROVIDER_KEY = "gsk-bench-0123456789abcdef"
#: LiteLLM's proxy refuses to start without a master key; freegin-ai (no key) ignores it.
CLIENT_KEY = "sk-bench-master-key-0123456789abcdef"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
#: Resident memory may grow this much after the warm-up and still count as flat (allocator
#: arenas and caches settle in steps).
GROWTH_MIB = 5.0


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    per_second: float
    median_ms: float | None
    non_2xx: int
    socket_errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(process: subprocess.Popen[str], timeout: float = 60) -> str:
    """Read the process's output until it prints `listening on URL` (or `PORT n`): the URL."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"listening on (http://\S+)", line)
        port = re.match(r"PORT (\d+)$", line.strip())
        if found or port:
            # Keep reading what it prints, so a full pipe never blocks it.
            threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
            return found.group(1) if found else f"http://127.0.0.1:{port.group(1) if port else ''}"
    raise RuntimeError("did not start:\n" + "".join(seen))


def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def post_script(path: Path) -> Path:
    """A wrk script POSTing BODY."""
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {CLIENT_KEY}"\n'
    )
    return path


def wrk(url: str, script: Path, *, connections: int, seconds: float, latency: bool) -> Load:
    command = [
        "wrk",
        "-t1",
        "--timeout",
        "10s",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "-s",
        str(script),
    ]
    if latency:
        command.append("--latency")
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    median = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    return Load(
        requests=requests,
        per_second=per_second,
        median_ms=float(median.group(1)) * _UNITS[median.group(2)] if median else None,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def line(name: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"{name:<44} {value:>16}  {target:<26} {verdict}", flush=True)


def stop(process: subprocess.Popen[str] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def start_freegin(work: Path, upstream: str) -> subprocess.Popen[str]:
    """`freegin-ai serve` on a fresh data dir, `bench-model` adopted for chat on the fake."""
    script_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env |= {
        "FREEGIN_DATA_DIR": str(work / "data"),
        "FREEGIN_CONFIG_DIR": str(work / "config"),
        "FREEGIN_GROQ_BASE_URL": upstream,
        "GROQ_API_KEY": PROVIDER_KEY,
    }
    subprocess.run(
        [str(script_dir / "freegin-ai"), "adopt-model", "groq", "bench-model",
         "--priority", "0"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return subprocess.Popen(
        [str(script_dir / "freegin-ai"), "serve", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def start_litellm(executable: str, work: Path, upstream: str) -> tuple[subprocess.Popen[str], str]:
    """LiteLLM's proxy with one route, `chat`, to the fake; and its base URL."""
    port = free_port()
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: chat\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = {
        **os.environ,
        # Never fetch the price list from the internet; quiet logs.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_MASTER_KEY": CLIENT_KEY,
    }
    process = subprocess.Popen(
        [executable, "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def compare(peers: dict[str, str], script: Path, seconds: float) -> None:
    """Each gateway at 32 connections and at one, then the ratios."""
    results: dict[str, tuple[Load, Load]] = {}
    for name, url in peers.items():
        wrk(url, script, connections=8, seconds=2, latency=False)  # warm-up
        many = wrk(url, script, connections=32, seconds=seconds, latency=True)
        one = wrk(url, script, connections=1, seconds=seconds, latency=True)
        results[name] = (many, one)
        line(f"{name}: req/s at 32 connections", f"{many.per_second:,.0f}")
        line(f"{name}: median at 32 connections", f"{many.median_ms or 0:.2f} ms")
        line(f"{name}: median at 1 connection", f"{one.median_ms or 0:.2f} ms")
        bad = many.non_2xx + one.non_2xx
        errors = many.socket_errors + one.socket_errors
        line(f"{name}: non-2xx / socket errors", f"{bad} / {errors}")
    ours_many, ours_one = results["freegin-ai serve"]
    if "LiteLLM proxy" in results:
        theirs_many, theirs_one = results["LiteLLM proxy"]
        ratio = ours_many.per_second / max(theirs_many.per_second, 1e-9)
        line("req/s ratio at 32 (freegin / LiteLLM)", f"{ratio:.1f}x", ">= 10x",
             "ok" if ratio >= 10 else "MISSED")  # fmt: skip
        share = (ours_one.median_ms or 0) / max(theirs_one.median_ms or 0, 1e-9)
        line("median ratio at 1 (freegin / LiteLLM)", f"{share:.2f}", "<= 0.20",
             "ok" if share <= 0.2 else "MISSED")  # fmt: skip
    bad = ours_many.non_2xx + ours_one.non_2xx
    line("freegin-ai non-2xx answers", str(bad), "0", "ok" if bad == 0 else "MISSED")


def memory(pid: int, url: str, script: Path, *, warm_up: int, requests: int) -> None:
    """Resident memory of the gateway over `requests` requests after `warm_up` of them (32
    connections), sampled after the warm-up and after every tenth of the run.

    wrk runs for a time, not a number of requests: each run lasts what the last rate says
    the requests take, and runs follow each other until the count is reached.
    """
    rate = 0.0

    def drive(count: int) -> Load:
        nonlocal rate
        seconds = count / rate if rate else 2.0  # the first run measures the rate
        load = wrk(url, script, connections=32, seconds=seconds, latency=False)
        rate = load.per_second or rate
        return load

    start = rss_mib(pid)
    runs: list[Load] = []
    while sum(r.requests for r in runs) < warm_up:
        runs.append(drive(warm_up - sum(r.requests for r in runs)))
    warmed = sum(r.requests for r in runs)
    samples = [(warmed, rss_mib(pid))]
    step = max(1, requests // 10)
    started = time.monotonic()
    done = 0
    while done < requests:
        load = drive(min(step, requests - done))
        if load.requests == 0:
            break
        runs.append(load)
        done += load.requests
        samples.append((warmed + done, rss_mib(pid)))
    measured = done / max(time.monotonic() - started, 1e-9)
    bad = sum(r.non_2xx for r in runs)
    errors = sum(r.socket_errors for r in runs)
    baseline, end = samples[0][1], samples[-1][1]
    growth = end - baseline
    line("freegin-ai RSS at start / after warm-up", f"{start:.1f} / {baseline:.1f} MiB")
    line(f"freegin-ai RSS after {warmed + done:,} requests", f"{end:.1f} MiB")
    print(
        "    samples (requests: MiB): "
        + ", ".join(f"{n / 1000:.0f}k: {mib:.1f}" for n, mib in samples),
        flush=True,
    )
    line("freegin-ai req/s during the memory run", f"{measured:,.0f}")
    line("memory run non-2xx / socket errors", f"{bad} / {errors}", "0",
         "ok" if bad == 0 else "MISSED")  # fmt: skip
    line(f"RSS growth over {done:,} after the warm-up", f"{growth:+.1f} MiB",
         f"<= {GROWTH_MIB:g} MiB (flat)", "ok" if growth <= GROWTH_MIB else "MISSED")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--litellm", help="the `litellm` executable (its proxy); none: skip it")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run")
    parser.add_argument(
        "--only", choices=("peers", "memory"), help="run only the comparison or the memory run"
    )
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument("--warm-up-requests", type=int, default=10_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk; `make bench-peers` does it)")
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="freegin-peers-") as tmp:
        work = Path(tmp)
        script = post_script(work / "post.lua")
        try:
            # The same fast fake as the router's peers (tests.bench.fast_server), alive long
            # enough for the memory run.
            provider = subprocess.Popen(
                [sys.executable, "-m", "tests.bench.fast_server", "--seconds", "7200"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            processes.append(provider)
            upstream = wait_listening(provider) + "/v1"
            freegin = start_freegin(work, upstream)
            processes.append(freegin)
            freegin_url = wait_listening(freegin) + "/v1/chat/completions"
            if args.only != "memory":
                peers = {"freegin-ai serve": freegin_url}
                litellm = None
                if args.litellm:
                    litellm, base = start_litellm(args.litellm, work, upstream)
                    processes.append(litellm)
                    wait_http(f"{base}/health/liveliness", timeout=180)
                    peers["LiteLLM proxy"] = f"{base}/v1/chat/completions"
                compare(peers, script, args.seconds)
                stop(litellm)  # its memory and cores are not the gateway's to share
            if args.only != "peers":
                memory(
                    freegin.pid,
                    freegin_url,
                    script,
                    warm_up=args.warm_up_requests,
                    requests=args.memory_requests,
                )
        finally:
            for process in reversed(processes):
                stop(process)


if __name__ == "__main__":
    main()
