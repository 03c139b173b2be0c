"""Router commands: status (provider health). `generate` and `chat` are in chat_commands."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from freegin_ai.cli.common import add_json_argument
from freegin_ai.cli.output import emit_json


def register(commands: Any) -> None:
    p = commands.add_parser(
        "status",
        help="show providers and models: credentials, cooldowns, free-tier quota",
        description=(
            "Per provider: whether it can be called, where its key comes from, health. Per "
            "model: requests and tokens used / limit this minute and today, the next reset, "
            "and whether the router would route to it now, or why not. Active models the "
            "provider no longer lists, and retirements proposed (after a delisting or a 410 "
            "Gone) that nobody has accepted or declined yet."
        ),
    )
    p.add_argument("--provider", help="only this provider")
    add_json_argument(p)
    p.set_defaults(handler=status)

    p = commands.add_parser(
        "clear-provider",
        help="route to a sidelined provider (out of credit) or a gone model again",
        description=(
            "A provider that answered 402 / out of credit is sidelined until a call succeeds "
            "or you clear it here (after topping up); with --model, a model that answered 410 "
            "Gone is cleared instead. Recorded as a ProviderCleared event."
        ),
    )
    p.add_argument("provider", help="provider name or alias")
    p.add_argument("--model", help="clear this model (marked gone) instead of the provider")
    p.add_argument("--reason", help="why (kept in the event)")
    p.set_defaults(handler=clear_provider)


def status(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.credentials import CredentialStore
    from freegin_ai.adapters.router import Router
    from freegin_ai.cli.output import warn_exposed
    from freegin_ai.domain.providers import PROVIDERS, parse_provider
    from freegin_ai.projections.listings import list_syncs
    from freegin_ai.projections.queries import list_health

    only = parse_provider(args.provider) if args.provider else None
    router = Router.open(os.environ)
    if isinstance(router.providers.credentials, CredentialStore):
        warn_exposed(router.providers.credentials)
    try:
        with router.catalog.reading() as conn:
            health = list_health(conn, provider=only)
            not_applied = router.catalog.projector.not_applied(conn)
            syncs = {s.provider: s for s in list_syncs(conn)}
        active = router.catalog.list_models(provider=only)
        flags = router.catalog.not_listed(sorted({(r.provider, r.model) for r in active}))
        proposals = router.catalog.retirement_proposals(provider=only)
        quotas = router.quota_status(only)
        now = router.clock().isoformat()
        rows: list[dict[str, Any]] = []
        for name in PROVIDERS:
            if only and name != only:
                continue
            cooling = [
                h for h in health if h.provider == name and h.cooldown_until
                and h.cooldown_until > now
            ]  # fmt: skip
            rows.append(
                {
                    "provider": name,
                    "usable": router.providers.unavailable(name) is None,
                    "reason": router.providers.unavailable(name),
                    "key": router.providers.key_source(name),
                    "cooling": [
                        {
                            "model": h.model or "(whole provider)",
                            "until": h.cooldown_until,
                            "consecutive_failures": h.consecutive_failures,
                            "last_error_kind": h.last_error_kind,
                        }
                        for h in cooling
                    ],
                    "models": [_quota_json(q) for q in quotas if q.provider == name],
                    "listing_synced_at": syncs[name].synced_at if name in syncs else None,
                    "not_listed": [
                        {"model": m, "since": since}
                        for (p, m), since in sorted(flags.items())
                        if p == name
                    ],
                    "retirement_proposed": [
                        {
                            "model": p.model,
                            "workload": p.workload,
                            "since": p.at,
                            "cause": p.cause,
                            "reason": p.reason,
                        }
                        for p in proposals
                        if p.provider == name
                    ],
                }
            )
    finally:
        anyio_close(router)
    if not_applied:
        from freegin_ai.cli.render import render_not_applied

        # On stderr: a warning about the data, and `--json` output keeps its shape.
        print(f"warning: {render_not_applied(not_applied)}", file=sys.stderr)
    if args.json:
        emit_json(rows)
        return 0
    for row in rows:
        state = "ready" if row["usable"] else f"unavailable: {row['reason']}"
        print(f"{row['provider']:<12} key: {row['key']:<11} {state}")
        for c in row["cooling"]:
            print(
                f"    {c['model']}: cooling down until {c['until']} after "
                f"{c['consecutive_failures']} failures ({c['last_error_kind']})"
            )
        if row["usable"]:
            for q in row["models"]:
                print(f"    {q['model']}: {_quota_line(q)}")
        for n in row["not_listed"]:
            print(
                f"    {n['model']}: active but not listed by the provider since {n['since'][:10]}"
            )
        for r in row["retirement_proposed"]:
            why = "no longer listed" if r["cause"] == "delisted" else "gone (410)"
            print(
                f"    {r['model']} ({r['workload']}): retirement proposed {r['since'][:10]}, "
                f"{why}; accept with `retire-model`, keep with `adopt-model`"
            )
    return 0


def _quota_json(q: Any) -> dict[str, Any]:
    windows: dict[str, dict[str, Any]] = {}
    for w in q.windows:
        windows.setdefault(w.window, {"resets_at": _stamp(w.resets_at)})[w.measure] = {
            "used": w.used,
            "limit": w.limit,
            "remaining": w.remaining,
        }
    return {
        "model": q.model,
        "bucket": q.bucket,
        "minute": windows.get("minute"),
        "day": windows.get("day"),
        "next_reset": _stamp(q.next_reset),
        "routable": q.routable,
        "why": q.why,
        "back_at": _stamp(q.back_at),
        "limits_source": q.limits_source or None,
    }


def _stamp(value: Any) -> str | None:
    return None if value is None else str(value.isoformat().replace("+00:00", "Z"))


def _quota_line(q: dict[str, Any]) -> str:
    parts = []
    for window, label in (("minute", "this minute"), ("day", "today")):
        counts = q[window] or {}
        shown = []
        for measure, short in (("requests", "req"), ("tokens", "tok")):
            c = counts.get(measure) or {}
            if c.get("limit") is not None or c.get("used"):
                limit = "?" if c.get("limit") is None else str(c["limit"])
                shown.append(f"{c.get('used', 0)}/{limit} {short}")
        if shown:
            parts.append(f"{label} {', '.join(shown)}")
    if q["next_reset"]:
        parts.append(f"next reset {q['next_reset']}")
    parts.append("routable" if q["routable"] else f"not routable: {q['why']}")
    return " · ".join(parts)


def clear_provider(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.catalog import Catalog
    from freegin_ai.adapters.settings import database_url
    from freegin_ai.domain.names import check_model_name
    from freegin_ai.domain.providers import parse_provider

    parse_provider(args.provider)  # names are checked before the database is opened
    if args.model:
        check_model_name(args.model)
    catalog = Catalog.open(database_url(os.environ))
    try:
        catalog.clear_provider(args.provider, args.model or "", args.reason)
    finally:
        catalog.close()
    what = f"model {args.model!r} of {args.provider}" if args.model else args.provider
    print(f"Cleared {what}: the router will try it again")
    return 0


def anyio_close(router: Any) -> None:
    import anyio

    anyio.run(router.aclose)
    router.catalog.close()
