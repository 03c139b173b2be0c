"""Wire helpers shared by the adapters: send one JSON request, and read fields from the reply.

`send_json` turns every failure into a ProviderError (see `errors_mapping`); the readers raise a
`malformed` ProviderError when a field is missing or has the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from freegin_ai.adapters.errors import ProviderError
from freegin_ai.adapters.providers.base import ResponseMeta, response_meta
from freegin_ai.adapters.providers.errors_mapping import (
    CallContext,
    error_for_exception,
    error_for_status,
    malformed,
)


async def send_json(
    client: httpx.AsyncClient,
    ctx: CallContext,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: object | None = None,
    params: Mapping[str, str] | None = None,
    meta: list[ResponseMeta] | None = None,
) -> object:
    """Send one request and return the decoded JSON of a 2xx reply.

    The caller's client timeouts apply: no `timeout=` is passed here, so they are never disabled.
    With `meta`, the response's status and rate-limit headers are appended to it (a failed
    response carries them on its ProviderError instead).
    """
    try:
        response = await client.request(
            method,
            url,
            headers={"accept": "application/json", **headers},
            json=body,
            params=params,
        )
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise error_for_exception(ctx, exc) from None
    if not response.is_success:
        raise error_for_status(ctx, response)
    if meta is not None:
        meta.append(response_meta(response.status_code, response.headers))
    try:
        return json.loads(response.content)
    except ValueError:
        raise malformed(ctx, "body is not JSON", status=response.status_code) from None


def as_dict(ctx: CallContext, value: object, where: str) -> dict[str, object]:
    """The value as a JSON object, or a malformed error naming `where`."""
    if not isinstance(value, dict):
        raise malformed(ctx, f"expected an object at {where}")
    return value


def as_list(ctx: CallContext, value: object, where: str) -> list[object]:
    """The value as a JSON array, or a malformed error naming `where`."""
    if not isinstance(value, list):
        raise malformed(ctx, f"expected an array at {where}")
    return value


def as_str(ctx: CallContext, value: object, where: str) -> str:
    """The value as a string, or a malformed error naming `where`."""
    if not isinstance(value, str):
        raise malformed(ctx, f"expected a string at {where}")
    return value


def require(ctx: CallContext, obj: Mapping[str, object], key: str, where: str) -> object:
    """`obj[key]`, or a malformed error naming the missing field."""
    if key not in obj:
        raise malformed(ctx, f"missing field {where}.{key}")
    return obj[key]


def optional_int(value: object) -> int | None:
    """A token count: a non-negative int, or None when absent or not a count."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def nested_int(usage: Mapping[str, object], outer: str, inner: str) -> int | None:
    """A token count one level down, e.g. usage.prompt_tokens_details.cached_tokens."""
    details = usage.get(outer)
    return optional_int(details.get(inner)) if isinstance(details, dict) else None


def usage_dict(value: object) -> dict[str, object]:
    """The provider's usage object as reported, or an empty dict."""
    return dict(value) if isinstance(value, dict) else {}


def reported_model(body: Mapping[str, object], key: str, default: str) -> str:
    """The model the provider says answered, falling back to the one asked for."""
    value = body.get(key)
    return value if isinstance(value, str) and value else default


def no_credentials(provider: str, model: str | None) -> ProviderError:
    """The error for a provider that needs a key and has none; nothing is sent."""
    label = CallContext(provider=provider, model=model).label
    return ProviderError("no_credentials", f"{label}: no API key configured")
