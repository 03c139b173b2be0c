"""sync-models: read each provider's model listing and record what each listed model is."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from freegin_ai.cli.output import emit_json, fail

if TYPE_CHECKING:
    from freegin_ai.adapters.model_sync import SyncReport


def register(commands: Any) -> None:
    """Add sync-models to the `freegin-ai` parser."""
    p = commands.add_parser(
        "sync-models",
        help="read the providers' model listings into the catalog",
        description=(
            "Read each provider's model listing (context window, output limit, tool and JSON "
            "support, prices, free or not; the Hugging Face Hub's pipeline tags) and record "
            "what changed. Active models a provider no longer lists are flagged, and their "
            "retirement is proposed for a person to accept with `retire-model`."
        ),
    )
    p.add_argument("--provider", help="only this provider (default: every usable provider)")
    p.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=sync_models_command)


def sync_models_command(args: argparse.Namespace) -> int:
    import anyio

    from freegin_ai.domain.providers import parse_provider

    provider = parse_provider(args.provider) if args.provider else None
    report = anyio.run(run_sync, provider, args.dry_run)
    if args.json:
        emit_json(report)
    else:
        print(render_sync(report))
    for result in report.results:
        if result.error:
            print(f"error: {result.provider}: {result.error}", file=sys.stderr)
    if not report.results:
        return fail("no provider can be called here: add a key with `freegin-ai add-service`", 1)
    return 1 if report.failed else 0


async def run_sync(provider: str | None, dry_run: bool) -> SyncReport:
    """Sync against the catalog and providers the environment names (also for refresh --all)."""
    from freegin_ai.adapters import bootstrap
    from freegin_ai.adapters.config import load_config
    from freegin_ai.adapters.credentials import CredentialStore, default_credentials_path
    from freegin_ai.adapters.model_sync import sync_models
    from freegin_ai.adapters.provider_set import ProviderSet
    from freegin_ai.cli.common import open_catalog

    config = load_config(os.environ)
    providers = ProviderSet(
        config, os.environ, CredentialStore(default_credentials_path(os.environ))
    )
    seconds = config.timeout_seconds
    catalog = open_catalog()
    try:
        async with bootstrap.http_client(seconds, config.http_transport, one_shot=True) as client:
            return await sync_models(
                catalog,
                providers,
                client,
                only=provider,
                dry_run=dry_run,
                progress=lambda name: print(f"Syncing {name}…", file=sys.stderr),
            )
    finally:
        catalog.close()


def render_sync(report: SyncReport) -> str:
    """One block per provider: counts, then what changed and what is flagged."""
    lines = ["=== DRY RUN MODE: nothing recorded ===" if report.dry_run else "Synced listings:"]
    for r in report.results:
        if r.error:
            lines.append(f"  {r.provider}: FAILED")
            continue
        lines.append(
            f"  {r.provider}: {r.listed} listed, {len(r.new)} new, {len(r.changed)} changed, "
            f"{len(r.delisted)} delisted"
        )
        for workload, model in r.unlisted_active:
            proposed = " (retirement proposed)" if (workload, model) in r.proposed else ""
            lines.append(f"    ! active {workload}/{model} is not listed{proposed}")
    return "\n".join(lines)
