"""sync-models: read each provider's model listing and record what each listed model is.

Listings, per wire format (the same key and headers as a call):

    OpenAI-style   GET {base}/models            data[] (Groq, OpenRouter with prices, context
                                                 length and supported parameters, Mistral, …)
    Hugging Face   GET {base}/models            the chat router's models (providers[] with
                                                 context length, prices, tool/JSON support), and
                   GET {hub}/api/models/{id}    the Hub's pipeline tag for each HF model in
                                                 the roster the router does not list (task models)
    Gemini         GET {base}/models            paged by pageToken; input/output token limits
    Anthropic      GET {base}/models            paged by after_id

A provider whose listing cannot be read is reported and left as it was; nothing is recorded
for it. Active roster models a provider no longer lists get a retirement proposal
(`Catalog.record_listing`). A dry run reads and compares, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.http_client import HttpClient
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.providers._wire import no_credentials, send_json
from freegin_ai.adapters.providers.base import ProviderEndpoint
from freegin_ai.adapters.providers.errors_mapping import CallContext, malformed
from freegin_ai.adapters.providers.registry import PROVIDER_SPECS
from freegin_ai.domain.errors import InvalidListingError, InvalidModelNameError
from freegin_ai.domain.model_info import ListingChanges, ModelInfo
from freegin_ai.domain.names import check_model_name

#: Where the Hugging Face Hub's model API lives (FREEGIN_HUGGINGFACE_HUB_URL overrides it).
HUB_URL = "https://huggingface.co"
HUB_URL_ENV = "FREEGIN_HUGGINGFACE_HUB_URL"
#: At most this many pages of a paged listing are read.
MAX_PAGES = 20

Listing = dict[str, ModelInfo]


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One provider's sync: what its listing changed, what it flagged, or why it failed."""

    provider: str
    listed: int = 0
    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    delisted: tuple[str, ...] = ()
    #: Active roster models (workload, model) the provider does not list.
    unlisted_active: tuple[tuple[str, str], ...] = ()
    #: Of those, the ones whose retirement was proposed by this sync.
    proposed: tuple[tuple[str, str], ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SyncReport:
    """Every provider's sync."""

    dry_run: bool
    results: tuple[SyncResult, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        return any(r.error for r in self.results)


async def sync_models(
    catalog: Catalog,
    providers: ProviderSet,
    client: HttpClient,
    *,
    only: str | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Sync one provider's listing, or every provider that can be called here."""
    names = [only] if only else providers.available()
    results = []
    for name in names:
        if progress is not None:
            progress(name)
        why = providers.unavailable(name)
        if why is not None:
            results.append(SyncResult(name, error=why))
            continue
        results.append(await _sync_one(catalog, providers, client, name, dry_run))
    return SyncReport(dry_run, tuple(results))


async def _sync_one(
    catalog: Catalog, providers: ProviderSet, client: HttpClient, name: str, dry_run: bool
) -> SyncResult:
    endpoint = providers.endpoint(name)
    roster = catalog.list_models(provider=name)
    try:
        listing = await fetch_listing(
            client, endpoint, hub_url=providers.env.get(HUB_URL_ENV, "").strip() or HUB_URL,
            roster_models=sorted({r.model for r in roster}),
        )  # fmt: skip
    except ProviderError as error:
        return SyncResult(name, error=str(error))
    if not listing:
        return SyncResult(name, error=f"{name} listed no models; nothing recorded")
    unlisted = tuple(sorted((r.workload, r.model) for r in roster if r.model not in listing))
    source = endpoint.base_url
    try:
        if dry_run:
            changes: ListingChanges = catalog.listing_changes(name, listing)
            proposed: tuple[tuple[str, str], ...] = ()
        else:
            changes, rows = catalog.record_listing(name, listing, source=source)
            proposed = tuple(sorted((r.workload, r.model) for r in rows))
    except InvalidListingError as error:
        return SyncResult(name, error=str(error))
    return SyncResult(
        name,
        listed=len(listing),
        new=changes.new,
        changed=changes.changed,
        delisted=changes.delisted,
        unlisted_active=unlisted,
        proposed=proposed,
    )


async def fetch_listing(
    client: HttpClient,
    endpoint: ProviderEndpoint,
    *,
    hub_url: str = HUB_URL,
    roster_models: list[str] | None = None,
) -> Listing:
    """A provider's listing: model id → what it says about the model."""
    ctx = CallContext(provider=endpoint.name, secret=endpoint.api_key)
    spec = PROVIDER_SPECS.get(endpoint.name)
    base = endpoint.base_url.rstrip("/")
    if endpoint.api == "gemini":
        return await _gemini(client, ctx, endpoint, base)
    if endpoint.api == "anthropic":
        return await _anthropic(client, ctx, endpoint, base)
    headers = {"authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    if not endpoint.api_key and spec is not None and spec.needs_key:
        raise no_credentials(endpoint.name, None)
    data = await send_json(
        client, ctx, "GET", f"{base}/models", limits=endpoint.limits, headers=headers
    )
    items = data if isinstance(data, list) else _dict(data).get("data")
    if not isinstance(items, list):
        raise malformed(ctx, "expected an array at $.data")
    listing: Listing = {}
    for item in items:
        entry = _dict(item)
        model = _model_id(entry.get("id"))
        if model is not None:
            listing[model] = openai_style_info(entry)
    if endpoint.api == "huggingface":
        for model in roster_models or []:
            if model not in listing:
                info = await _hub_info(client, ctx, endpoint, hub_url, model, headers)
                if info is not None:
                    listing[model] = info
    return listing


# -- OpenAI-style entries (OpenAI, Groq, OpenRouter, Mistral, the HF router, …) -------------


def openai_style_info(entry: Mapping[str, Any]) -> ModelInfo:
    """What one `data[]` entry says, whichever provider's extensions it carries."""
    top = _dict(entry.get("top_provider"))
    hf = _first_live(entry.get("providers"))
    caps = _dict(entry.get("capabilities"))
    params = entry.get("supported_parameters")
    params = [p for p in params if isinstance(p, str)] if isinstance(params, list) else None
    tools = _bool(
        caps.get("function_calling"),
        hf.get("supports_tools"),
        entry.get("supports_tools"),
        None if params is None else "tools" in params,
    )
    json_ok = _bool(
        caps.get("json_mode"),
        caps.get("structured_output"),
        hf.get("supports_structured_output"),
        None if params is None else bool({"response_format", "structured_outputs"} & set(params)),
    )
    price_in, price_out = _openrouter_prices(entry.get("pricing"))
    if price_in is None and price_out is None:
        price_in, price_out = _per_million_prices(hf.get("pricing"))
    model = str(entry.get("id", ""))
    free = None
    if price_in is not None and price_out is not None:
        free = price_in == 0 and price_out == 0
    if model.endswith(":free"):
        free = True
    return ModelInfo(
        context_window=_int(
            entry.get("context_window"),
            entry.get("context_length"),
            entry.get("max_context_length"),
            top.get("context_length"),
            hf.get("context_length"),
            entry.get("max_model_len"),
        ),
        max_output_tokens=_int(
            entry.get("max_completion_tokens"),
            entry.get("max_output_tokens"),
            top.get("max_completion_tokens"),
        ),
        supports_tools=tools,
        supports_json=json_ok,
        input_per_1k_micros=price_in,
        output_per_1k_micros=price_out,
        free=free,
    )


def _openrouter_prices(pricing: object) -> tuple[float | None, float | None]:
    """OpenRouter: US dollars per token, as strings ("0.0000003")."""
    p = _dict(pricing)
    return _per_token(p.get("prompt")), _per_token(p.get("completion"))


def _per_token(value: object) -> float | None:
    number = _number(value)
    return None if number is None else round(number * 1e9, 6)  # $/token → micros per 1k


def _per_million_prices(pricing: object) -> tuple[float | None, float | None]:
    """The HF router: US dollars per million tokens."""
    p = _dict(pricing)
    price_in, price_out = _number(p.get("input")), _number(p.get("output"))
    return (
        None if price_in is None else round(price_in * 1000, 6),
        None if price_out is None else round(price_out * 1000, 6),
    )


def _first_live(providers: object) -> dict[str, Any]:
    """The HF router's first live provider entry for a model (or the first one)."""
    if not isinstance(providers, list):
        return {}
    entries = [p for p in providers if isinstance(p, dict)]
    live = [p for p in entries if p.get("status") in (None, "live")]
    return (live or entries or [{}])[0]


# -- Hugging Face Hub ------------------------------------------------------------------------


async def _hub_info(
    client: HttpClient,
    ctx: CallContext,
    endpoint: ProviderEndpoint,
    hub_url: str,
    model: str,
    headers: Mapping[str, str],
) -> ModelInfo | None:
    """The Hub's pipeline tag and tags for a model; None when the Hub does not have it."""
    url = f"{hub_url.rstrip('/')}/api/models/{quote(model, safe='/')}"
    try:
        data = _dict(
            await send_json(client, ctx, "GET", url, limits=endpoint.limits, headers=headers)
        )
    except ProviderError as error:
        if error.kind == "not_found":
            return None
        raise
    if data.get("disabled") is True:
        return None
    tag = data.get("pipeline_tag")
    tags = data.get("tags")
    return ModelInfo(
        pipeline_tag=tag if isinstance(tag, str) else None,
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
    )


# -- Gemini and Anthropic (paged) ------------------------------------------------------------


async def _gemini(
    client: HttpClient, ctx: CallContext, endpoint: ProviderEndpoint, base: str
) -> Listing:
    if not endpoint.api_key:
        raise no_credentials(endpoint.name, None)
    headers = {"x-goog-api-key": endpoint.api_key}
    listing: Listing = {}
    token: str | None = None
    for _ in range(MAX_PAGES):
        params = {"pageSize": "1000", **({"pageToken": token} if token else {})}
        page = _dict(await send_json(client, ctx, "GET", f"{base}/models", headers=headers,
                                     params=params, limits=endpoint.limits))  # fmt: skip
        for item in page.get("models") or []:
            entry = _dict(item)
            methods = entry.get("supportedGenerationMethods")
            if isinstance(methods, list) and "generateContent" not in methods:
                continue
            model = _model_id(str(entry.get("name", "")).removeprefix("models/"))
            if model is not None:
                listing[model] = ModelInfo(
                    context_window=_int(entry.get("inputTokenLimit")),
                    max_output_tokens=_int(entry.get("outputTokenLimit")),
                )
        next_token = page.get("nextPageToken")
        if not isinstance(next_token, str) or not next_token:
            break
        token = next_token
    return listing


async def _anthropic(
    client: HttpClient, ctx: CallContext, endpoint: ProviderEndpoint, base: str
) -> Listing:
    if not endpoint.api_key:
        raise no_credentials(endpoint.name, None)
    headers = {"x-api-key": endpoint.api_key, "anthropic-version": "2023-06-01"}
    listing: Listing = {}
    after: str | None = None
    for _ in range(MAX_PAGES):
        params = {"limit": "1000", **({"after_id": after} if after else {})}
        page = _dict(await send_json(client, ctx, "GET", f"{base}/models", headers=headers,
                                     params=params, limits=endpoint.limits))  # fmt: skip
        for item in page.get("data") or []:
            entry = _dict(item)
            model = _model_id(entry.get("id"))
            if model is not None:
                listing[model] = ModelInfo(
                    context_window=_int(entry.get("max_input_tokens")),
                    max_output_tokens=_int(entry.get("max_tokens")),
                )
        last = page.get("last_id")
        if page.get("has_more") is not True or not isinstance(last, str) or not last:
            break
        after = last
    return listing


# -- reading loosely typed JSON --------------------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _model_id(value: object) -> str | None:
    """A listed id the catalog can hold; others (odd characters, too long) are skipped."""
    if not isinstance(value, str):
        return None
    try:
        return check_model_name(value)
    except InvalidModelNameError:
        return None


def _int(*values: object) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _bool(*values: object) -> bool | None:
    for value in values:
        if isinstance(value, bool):
            return value
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if number >= 0 and number == number and number != float("inf") else None
