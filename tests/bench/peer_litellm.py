"""LiteLLM's Router against the fast fake, run by tests/bench/peers.py with the python of a
venv that has litellm (it never imports freegin_ai).

    peer_litellm.py BASE_URL REQUESTS INFLIGHT   ->  one JSON line: median_ms, rps, ttft_ms, ...
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from importlib.metadata import version


async def main(base_url: str, requests: int, inflight: int) -> dict[str, object]:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    router = litellm.Router(
        model_list=[
            {
                "model_name": "bench",
                "litellm_params": {
                    "model": "openai/bench-model",
                    "api_base": base_url,
                    "api_key": "sk-bench",
                },
            }
        ]
    )
    messages = [{"role": "user", "content": "hi"}]

    async def call() -> object:
        return await router.acompletion(model="bench", messages=messages)

    for _ in range(min(50, requests)):
        await call()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)

    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    rps = requests / (time.perf_counter() - started)

    async def stream() -> tuple[float, float]:
        started = time.perf_counter()
        first = 0.0
        response = await router.acompletion(model="bench", messages=messages, stream=True)
        async for chunk in response:
            if not first and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
        return (first - started) * 1000, (time.perf_counter() - started) * 1000

    ttfts, totals = [], []
    for _ in range(min(requests, 500)):
        ttft, total = await stream()
        ttfts.append(ttft)
        totals.append(total)
    return {
        "version": version("litellm"),
        "median_ms": statistics.median(timings),
        "rps": rps,
        "ttft_ms": statistics.median(ttfts),
        "stream_ms": statistics.median(totals),
    }


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    print(json.dumps(result))
