"""The wire layer's deadline: a timeout ProviderError when it passes, and nothing of its own
when the block ends in time or someone else cancels it (asyncio.timeout's semantics)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers._wire import deadline
from freegin_ai.adapters.providers.errors_mapping import CallContext

CTX = CallContext(provider="groq", model="m")


@pytest.mark.anyio
async def test_a_block_past_its_deadline_fails_with_a_timeout_naming_the_call() -> None:
    with pytest.raises(ProviderError) as caught:
        async with deadline(CTX, 0.05):
            await asyncio.sleep(5)
    assert caught.value.kind == "timeout"
    assert str(caught.value) == "groq/m: timeout: no complete reply within 0.05 s"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # its cancellation was taken back
    await asyncio.sleep(0)  # and nothing is left pending for the caller


@pytest.mark.anyio
async def test_a_block_within_its_deadline_is_left_alone_and_its_timer_goes() -> None:
    loop = asyncio.get_running_loop()
    async with deadline(CTX, 5):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the timer, had it stayed, could not fire yet anyway
    assert not [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]


@pytest.mark.anyio
async def test_a_timeout_from_inside_counts_as_the_deadline() -> None:
    with pytest.raises(ProviderError, match="timeout"):
        async with deadline(CTX, 5):
            raise TimeoutError


@pytest.mark.anyio
async def test_someone_elses_cancellation_goes_through_untouched() -> None:
    reached = False
    with anyio.move_on_after(0.05) as scope:
        async with deadline(CTX, 5):
            await asyncio.sleep(5)
        reached = True
    assert scope.cancelled_caught and not reached


@pytest.mark.anyio
async def test_a_cancellation_arriving_with_the_deadline_is_not_swallowed() -> None:
    limit = deadline(CTX, 5)

    async def inner() -> None:
        async with limit:
            await asyncio.sleep(5)

    task = asyncio.ensure_future(inner())
    await asyncio.sleep(0)  # the task waits inside the block
    limit._expire()  # the deadline passes (its timer's callback) ...
    task.cancel()  # ... and the caller cancels in the same pass of the loop
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
