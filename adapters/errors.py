"""Adapter errors: what can go wrong outside the domain, all in one tree.

AdapterError
├── ConfigError
├── CredentialError
├── StorageError
│   ├── ConcurrentWriteError
│   └── LegacyImportError
├── ProviderError
├── RoutingError
│   ├── NoCandidateError
│   └── AllAttemptsFailedError
└── RefreshFailedError
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freegin_ai.domain.routing import Attempt, Decision
    from freegin_ai.domain.usage import TokenUsage


class AdapterError(Exception):
    """Raised when something outside the domain fails: storage, config, a provider."""


class ConfigError(AdapterError):
    """Raised when config.toml or an environment variable cannot be read."""


class CredentialError(AdapterError):
    """Raised when a credential cannot be stored, read or removed."""


class StorageError(AdapterError):
    """Raised when the database cannot be opened or written."""


class ConcurrentWriteError(StorageError):
    """Raised when another writer kept changing the same stream and retries ran out."""


class LegacyImportError(StorageError):
    """Raised when a file cannot be read as a database of the earlier freegin-ai."""


class ProviderError(AdapterError):
    """Raised when a provider call fails; `kind` says how, for routing and health.

    kinds: rate_limited (429), server (5xx), timeout, connection, malformed (reply not
    understood), auth (401/403), credit (402 or out-of-credit), bad_request (other 4xx),
    not_found (404: unknown model), gone (410: the model or endpoint was retired),
    no_credentials, filtered (the provider withheld the answer: safety, recitation, refusal),
    empty (a 200 with no answer text). `usage` is what a reply that arrived but failed still
    cost; `meta` the failed response's status and rate-limit headers.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        usage: TokenUsage | None = None,
        meta: object | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.usage = usage
        #: The failed response's status and rate-limit headers (providers.base.ResponseMeta).
        self.meta = meta

    @property
    def retryable_elsewhere(self) -> bool:
        """Whether the router should move on to the next candidate."""
        return self.kind in {
            "rate_limited",
            "server",
            "timeout",
            "connection",
            "malformed",
            "auth",
            "credit",
            "not_found",
            "gone",
            "no_credentials",
            "filtered",
            "empty",
        }


class RoutingError(AdapterError):
    """Raised when the router cannot answer a request; `decision` says what it considered."""


class NoCandidateError(RoutingError):
    """Raised when no model can be chosen for a request (nothing configured or all cooling)."""

    def __init__(self, message: str, decision: Decision | None = None) -> None:
        super().__init__(message)
        self.decision = decision


class AllAttemptsFailedError(RoutingError):
    """Raised when every candidate was tried and failed; `attempts` says how each failed."""

    def __init__(self, attempts: list[Attempt], decision: Decision) -> None:
        super().__init__(f"all {len(attempts)} attempts failed")
        self.attempts = attempts
        self.decision = decision


class RefreshFailedError(AdapterError):
    """Raised when the answering LLM fails, times out or says nothing usable.

    No suggestion and no run record is written; the failed call's usage is logged like any call's.
    """
