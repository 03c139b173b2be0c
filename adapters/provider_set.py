"""ProviderSet: which providers can be called here, and their adapters.

A provider can be called when it is not disabled in config.toml and has a key (from the
environment or the credential store), or needs none. A keyless local provider (Ollama) is
only used when configured (a `[providers.ollama]` table or FREEGIN_OLLAMA_BASE_URL), so a
machine without it does not waste a call on every request.
"""

from __future__ import annotations

from collections.abc import Mapping

from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.providers.base import ChatProvider, ProviderEndpoint
from freegin_ai.adapters.providers.registry import (
    PROVIDER_SPECS,
    CredentialLookup,
    base_url_env,
    key_source,
    make_provider,
    resolve_endpoint,
)
from freegin_ai.domain.providers import PROVIDERS


class ProviderSet:
    """The providers of one process, resolved once (endpoints and adapters are cached)."""

    def __init__(
        self,
        config: Config,
        env: Mapping[str, str],
        credentials: CredentialLookup | None,
    ) -> None:
        self.config = config
        self.env = dict(env)
        self.credentials = credentials
        self._endpoints: dict[str, ProviderEndpoint] = {}
        self._adapters: dict[str, ChatProvider] = {}
        self._unavailable: dict[str, str | None] = {}

    def endpoint(self, name: str) -> ProviderEndpoint:
        if name not in self._endpoints:
            self._endpoints[name] = resolve_endpoint(name, self.config, self.env, self.credentials)
        return self._endpoints[name]

    def adapter(self, name: str) -> ChatProvider:
        if name not in self._adapters:
            self._adapters[name] = make_provider(self.endpoint(name))
        return self._adapters[name]

    def key_source(self, name: str) -> str:
        """environment, stored or none."""
        return key_source(name, self.env, self.credentials)

    def unavailable(self, name: str) -> str | None:
        """Why a provider cannot be called here, or None when it can."""
        if name not in self._unavailable:
            self._unavailable[name] = self._why_not(name)
        return self._unavailable[name]

    def _why_not(self, name: str) -> str | None:
        spec = PROVIDER_SPECS[name]
        if spec.retired:
            return f"retired by the provider on {spec.retired} (its API answers 410 Gone)"
        if not self.config.provider(name).enabled:
            return "disabled in config.toml"
        if spec.needs_key:
            if self.key_source(name) == "none":
                variable = spec.key_env[1] if len(spec.key_env) > 1 else spec.key_env[0]
                return f"no API key (set {variable} or run `freegin-ai add-service {name}`)"
        elif name not in self.config.providers and not self.env.get(base_url_env(name)):
            return f"not configured (set {base_url_env(name)} or add [providers.{name}])"
        try:
            self.adapter(name)
        except ConfigError as error:
            return str(error)
        return None

    def available(self) -> list[str]:
        """Providers that can be called, in the catalog's order."""
        return [p for p in PROVIDERS if self.unavailable(p) is None]

    def secrets(self) -> list[str]:
        """Every key in use, to scrub from any text that leaves the process."""
        keys = []
        for name in PROVIDERS:
            try:
                key = self.endpoint(name).api_key
            except ConfigError:
                continue
            if key:
                keys.append(key)
        return keys
