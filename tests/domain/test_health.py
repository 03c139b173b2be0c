"""The health policy's backoff arithmetic."""

from __future__ import annotations

import pytest

from freegin_ai.domain.health import cooldown_seconds


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [(1, None, 30), (2, None, 60), (3, None, 120), (20, None, 3600), (1, 600, 600), (3, 5, 120)],
)
def test_backoff_doubles_is_capped_and_never_shorter_than_retry_after(
    failures: int, retry_after: float | None, expected: float
) -> None:
    assert cooldown_seconds(failures, retry_after) == expected
