"""A router process for cross-process tests: `python -m tests.fakes.router_worker N START`.

Opens the router from the environment (FREEGIN_DATABASE_URL, FREEGIN_CONFIG_DIR, provider
base URLs and keys), waits until the wall-clock time START (epoch seconds) so several
workers begin together, sends N requests one after another, and prints the model that
answered each as a JSON list.
"""

from __future__ import annotations

import json
import os
import sys
import time

import anyio

from freegin_ai.adapters.router import GenerateRequest, Router


async def main(count: int, start_at: float) -> list[str]:
    answered: list[str] = []
    async with Router.open(os.environ) as router:
        router.explain(GenerateRequest(prompt="warm up"))  # load the snapshot before the start
        time.sleep(max(0.0, start_at - time.time()))
        for _ in range(count):
            result = await router.generate(GenerateRequest(prompt="hi"))
            answered.append(result.model)
    return answered


if __name__ == "__main__":
    models = anyio.run(main, int(sys.argv[1]), float(sys.argv[2]))
    print(json.dumps(models))
