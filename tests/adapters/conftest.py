"""Fixtures shared by the adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.provider_server import FakeProviderServer


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    """A fake provider on 127.0.0.1 speaking every wire format."""
    with FakeProviderServer() as server:
        yield server
