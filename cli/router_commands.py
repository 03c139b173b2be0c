"""Router commands: status (provider health). `generate` and `chat` are in chat_commands."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from freegin_ai.cli.output import emit_json


def register(commands: Any) -> None:
    p = commands.add_parser(
        "status",
        help="show providers: credentials, and models cooling down",
        description="Per provider: whether it can be called, where its key comes from, health.",
    )
    p.add_argument("--provider", help="only this provider")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=status)


def status(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.router import Router
    from freegin_ai.domain.providers import PROVIDERS, parse_provider
    from freegin_ai.projections.queries import list_health

    only = parse_provider(args.provider) if args.provider else None
    router = Router.open(os.environ)
    try:
        with router.catalog.reading() as conn:
            health = list_health(conn, provider=only)
            not_applied = router.catalog.projector.not_applied(conn)
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
                }
            )
    finally:
        anyio_close(router)
    if not_applied:
        from freegin_ai.cli.catalog_commands import render_not_applied

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
    return 0


def anyio_close(router: Any) -> None:
    import anyio

    anyio.run(router.aclose)
    router.catalog.close()
