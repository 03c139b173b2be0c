"""A router process for crash tests: `python -m tests.fakes.router_process URL BASE_URL N`.

It routes chat requests to `groq/m` at BASE_URL (a fake provider on 127.0.0.1) with N calls
in flight, for ever, and prints `answered <request key>` (flushed) the moment each answer
comes back from the router: the parent kills it with SIGKILL at a moment of its choosing
and then checks that every printed key has its usage event in the log.
"""

from __future__ import annotations

import sys
from itertools import count

import anyio

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.router import GenerateRequest, Router


async def serve(url: str, base_url: str, in_flight: int) -> None:
    env = {"FREEGIN_GROQ_BASE_URL": base_url, "GROQ_API_KEY": "sk-crash-test"}
    catalog = Catalog.open(url, seed=False)
    keys = count()
    async with Router(catalog, ProviderSet(Config(), env, {}), timeout=10) as router:

        async def worker(worker_id: int) -> None:
            while True:
                key = f"w{worker_id}-{next(keys)}"
                request = GenerateRequest(prompt="hi", provider="groq", request_key=key)
                await router.generate(request)
                print(f"answered {key}", flush=True)

        async with anyio.create_task_group() as group:
            for worker_id in range(in_flight):
                group.start_soon(worker, worker_id)


if __name__ == "__main__":
    anyio.run(serve, sys.argv[1], sys.argv[2], int(sys.argv[3]))
