"""Configuration: `config.toml` in the user config dir, read once into a frozen Config.

    [providers.groq]                  # any name or alias from domain/providers.py
    base_url = "https://api.groq.com/openai/v1"
    enabled = true

    [refresh]
    via = "groq/llama-3.3-70b-versatile"    # the model that answers catalog refreshes

    [router]
    timeout_seconds = 30                    # one deadline per attempt: connect, headers, body
    max_reply_bytes = 4194304               # a longer reply is a failed attempt (falls back)
    stream_deadline_seconds = 600           # a streamed answer may run this long in all
    http_transport = "auto"                 # "aiohttp", "httpcore" (httpx's pool) or "auto":
                                            # httpcore for one-shot commands, else aiohttp
    max_cost_per_1k_tokens = 0.002          # US dollars, prompt and completion together
    max_latency_ms = 8000

    [prices."openrouter/deepseek/deepseek-r1"]
    input_per_1k_micros = 550               # millionths of a US dollar per 1,000 tokens
    output_per_1k_micros = 2190

    [limits."google/gemini-2.5-flash"]      # free-tier limits; override the shipped table
    requests_per_minute = 10
    requests_per_day = 250
    tokens_per_minute = 250000              # days reset at midnight Pacific for google, else UTC

The directory is `FREEGIN_CONFIG_DIR` when set, else platformdirs' `user_config_dir("freegin-ai")`
(~/.config/freegin-ai on Linux). A missing file means defaults; a malformed file, an unknown key
or a wrong type raises ConfigError naming the file and the key. Library functions take the
environment as a mapping; only `from_environ()` reads os.environ.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from freegin_ai.adapters.errors import ConfigError
from freegin_ai.adapters.http_client import DEFAULT_TRANSPORT, TRANSPORT_CHOICES
from freegin_ai.adapters.providers.base import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_REPLY_BYTES,
    WireLimits,
)
from freegin_ai.domain.errors import UnknownProviderError
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.quota import QuotaLimits
from freegin_ai.domain.quota_limits import day_reset_of, published_limits
from freegin_ai.domain.ranges import PRICE_MICROS_MAX

APP_NAME = "freegin-ai"
CONFIG_DIR_ENV = "FREEGIN_CONFIG_DIR"
CONFIG_FILE = "config.toml"
DEFAULT_TIMEOUT_SECONDS = DEFAULT_DEADLINE_SECONDS
#: Bounds for the reply cap: below 1 KiB nothing useful fits; above 1 GiB memory is at risk.
MIN_REPLY_BYTES, MAX_REPLY_BYTES = 1024, 1024**3
#: A deadline over a day is a hang by another name.
MAX_TIMEOUT_SECONDS = 86_400.0
#: A streamed answer may take this long in all; between two chunks, timeout_seconds.
DEFAULT_STREAM_DEADLINE_SECONDS = 600.0


@dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    """One `[providers.<name>]` table: an optional base URL override and an on/off switch."""

    base_url: str | None = None
    enabled: bool = True
    #: Models this provider serves beyond its catalog entries (for explicit `--model` requests).
    models: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PriceSetting:
    """One `[prices."<provider>/<model>"]` table, in millionths of a dollar per 1,000 tokens."""

    input_per_1k_micros: int
    output_per_1k_micros: int


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything config.toml says, with defaults for what it does not."""

    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    refresh_via: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES
    stream_deadline_seconds: float = DEFAULT_STREAM_DEADLINE_SECONDS
    http_transport: str = DEFAULT_TRANSPORT
    max_cost_per_1k_tokens: float | None = None
    max_latency_ms: int | None = None
    prices: Mapping[str, PriceSetting] = field(default_factory=dict)
    #: `[limits."provider/model"]`: free-tier limits that override the shipped table.
    quotas: Mapping[str, QuotaLimits] = field(default_factory=dict)
    path: Path | None = None  # the file read; None when there was none

    def provider(self, name: str) -> ProviderSettings:
        """The settings for a canonical provider name (defaults when it has no table)."""
        return self.providers.get(name, ProviderSettings())

    @property
    def limits(self) -> WireLimits:
        """The per-attempt deadline and reply cap every provider call obeys."""
        return WireLimits(
            deadline_seconds=self.timeout_seconds, max_reply_bytes=self.max_reply_bytes
        )

    def price(self, provider: str, model: str) -> PriceSetting | None:
        """The configured price for a model, if any."""
        return self.prices.get(f"{provider}/{model}")

    def quota_limits(self, provider: str, model: str) -> QuotaLimits:
        """A model's limits: the shipped table's, overridden by `[limits."provider/model"]`."""
        published = published_limits(provider, model)
        configured = self.quotas.get(f"{provider}/{model}")
        return published if configured is None else published.overridden_by(configured)


def config_dir(env: Mapping[str, str]) -> Path:
    """The directory holding config.toml and the credential store."""
    override = env.get(CONFIG_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME))


def load_config(env: Mapping[str, str]) -> Config:
    """Read config.toml from the config dir; defaults when the file does not exist."""
    return load_config_file(config_dir(env) / CONFIG_FILE)


def from_environ() -> Config:
    """load_config(os.environ): for the entry points only."""
    return load_config(os.environ)


def load_config_file(path: Path) -> Config:
    """Read one config file; defaults when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return _Reader(path).config(data)


class _Reader:
    """Checks one parsed file; every error names the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def table(self, value: object, key: str, allowed: set[str] | None) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(key or "(top level)", "expected a table")
        if allowed is not None:
            for name in value:
                if name not in allowed:
                    raise self.fail(f"{key}.{name}" if key else name, "unknown key")
        return value

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string")
        return value.strip()

    def url(self, value: object, key: str) -> str:
        text = self.string(value, key)
        if not text.startswith(("http://", "https://")):
            raise self.fail(key, "expected an http:// or https:// URL")
        return text.rstrip("/")

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def count(self, value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, "expected a non-negative integer")
        return value

    def positive(self, value: object, key: str, *, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "expected a number")
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            raise self.fail(key, "expected a positive number")
        if maximum is not None and number > maximum:
            raise self.fail(key, f"expected at most {maximum:g}")
        return number

    def bounded(self, value: object, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"expected a whole number from {low} to {high}")
        return value

    def strings(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "expected a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def provider_name(self, name: str, key: str) -> str:
        try:
            return parse_provider(name)
        except UnknownProviderError:
            raise self.fail(key, f"unknown provider {name!r}") from None

    def config(self, data: dict[str, object]) -> Config:
        top = self.table(data, "", {"providers", "refresh", "router", "prices", "limits"})
        providers: dict[str, ProviderSettings] = {}
        for name, value in self.table(top.get("providers", {}), "providers", None).items():
            key = f"providers.{name}"
            canonical = self.provider_name(name, key)
            if canonical in providers:
                raise self.fail(key, f"{canonical} is configured twice")
            settings = self.table(value, key, {"base_url", "enabled", "models"})
            providers[canonical] = ProviderSettings(
                base_url=(
                    self.url(settings["base_url"], f"{key}.base_url")
                    if "base_url" in settings
                    else None
                ),
                enabled=self.boolean(settings.get("enabled", True), f"{key}.enabled"),
                models=self.strings(settings.get("models", []), f"{key}.models"),
            )
        refresh = self.table(top.get("refresh", {}), "refresh", {"via"})
        via = None
        if "via" in refresh:
            via = self.string(refresh["via"], "refresh.via")
            provider, slash, model = via.partition("/")
            if not slash or not model:
                raise self.fail("refresh.via", "expected <provider>/<model>")
            via = f"{self.provider_name(provider, 'refresh.via')}/{model}"
        router = self.table(
            top.get("router", {}),
            "router",
            {
                "timeout_seconds",
                "max_reply_bytes",
                "stream_deadline_seconds",
                "http_transport",
                "max_cost_per_1k_tokens",
                "max_latency_ms",
            },
        )
        return Config(
            providers=providers,
            refresh_via=via,
            timeout_seconds=self.positive(
                router.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS),
                "router.timeout_seconds",
                maximum=MAX_TIMEOUT_SECONDS,
            ),
            max_reply_bytes=self.bounded(
                router.get("max_reply_bytes", DEFAULT_MAX_REPLY_BYTES),
                "router.max_reply_bytes",
                MIN_REPLY_BYTES,
                MAX_REPLY_BYTES,
            ),
            stream_deadline_seconds=self.positive(
                router.get("stream_deadline_seconds", DEFAULT_STREAM_DEADLINE_SECONDS),
                "router.stream_deadline_seconds",
            ),
            http_transport=self.choice(
                router.get("http_transport", DEFAULT_TRANSPORT),
                "router.http_transport",
                TRANSPORT_CHOICES,
            ),
            max_cost_per_1k_tokens=(
                self.cost(router["max_cost_per_1k_tokens"], "router.max_cost_per_1k_tokens")
                if "max_cost_per_1k_tokens" in router
                else None
            ),
            max_latency_ms=(
                self.count(router["max_latency_ms"], "router.max_latency_ms")
                if "max_latency_ms" in router
                else None
            ),
            prices=self.prices(top.get("prices", {})),
            quotas=self.quotas(top.get("limits", {})),
            path=self.path,
        )

    def choice(self, value: object, key: str, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(key, f"expected one of {', '.join(allowed)}")
        return value

    def cost(self, value: object, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "expected a number")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise self.fail(key, "expected a non-negative number")
        return number

    def prices(self, value: object) -> dict[str, PriceSetting]:
        prices: dict[str, PriceSetting] = {}
        for name, entry in self.table(value, "prices", None).items():
            key = f'prices."{name}"'
            provider, slash, model = name.partition("/")
            if not slash or not model:
                raise self.fail(key, "expected a <provider>/<model> key")
            table = self.table(entry, key, {"input_per_1k_micros", "output_per_1k_micros"})
            for needed in ("input_per_1k_micros", "output_per_1k_micros"):
                if needed not in table:
                    raise self.fail(f"{key}.{needed}", "missing")
            canonical = f"{self.provider_name(provider, key)}/{model}"
            prices[canonical] = PriceSetting(
                input_per_1k_micros=self.bounded(
                    table["input_per_1k_micros"], f"{key}.input_per_1k_micros", 0, PRICE_MICROS_MAX
                ),
                output_per_1k_micros=self.bounded(
                    table["output_per_1k_micros"],
                    f"{key}.output_per_1k_micros",
                    0,
                    PRICE_MICROS_MAX,
                ),
            )
        return prices

    def quotas(self, value: object) -> dict[str, QuotaLimits]:
        limits: dict[str, QuotaLimits] = {}
        counts = ("requests_per_minute", "requests_per_day", "tokens_per_minute", "tokens_per_day")
        for name, entry in self.table(value, "limits", None).items():
            key = f'limits."{name}"'
            provider, slash, model = name.partition("/")
            if not slash or not model:
                raise self.fail(key, "expected a <provider>/<model> key")
            table = self.table(entry, key, set(counts))
            canonical = self.provider_name(provider, key)
            values = {c: self.count(table[c], f"{key}.{c}") if c in table else None for c in counts}
            limits[f"{canonical}/{model}"] = QuotaLimits(
                requests_per_minute=values["requests_per_minute"],
                requests_per_day=values["requests_per_day"],
                tokens_per_minute=values["tokens_per_minute"],
                tokens_per_day=values["tokens_per_day"],
                day_reset=day_reset_of(canonical),
                source="config.toml",
            )
        return limits
