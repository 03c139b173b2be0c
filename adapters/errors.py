"""Adapter errors: what can go wrong outside the domain.

AdapterError
├── ConfigError
├── CredentialError
├── StorageError
│   └── ConcurrentWriteError
├── ProviderError
├── router.NoCandidateError, router.AllAttemptsFailedError
└── refresh.RefreshFailedError, legacy.LegacyImportError (a StorageError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freegin_ai.adapters.providers.replies import Usage


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


class ProviderError(AdapterError):
    """Raised when a provider call fails; `kind` says how, for routing and health.

    kinds: rate_limited (429), server (5xx), timeout, connection, malformed (reply not
    understood), auth (401/403), credit (402 or out-of-credit), bad_request (other 4xx),
    not_found (404: unknown model), gone (410: the model or endpoint was retired),
    no_credentials, filtered (the provider withheld the answer: safety, recitation, refusal),
    empty (a 200 with neither text nor tool calls), interrupted (a stream cut off before its
    end). `usage` is what a reply that arrived but failed still cost; `meta` the failed
    response's status and rate-limit headers.
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
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
            "interrupted",
            "filtered",
            "empty",
        }
