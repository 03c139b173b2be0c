"""Refresh commands: refresh-models (ask an LLM for new candidate models of a provider, or of
every provider on a schedule)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from freegin_ai.cli.common import add_json_argument
from freegin_ai.cli.output import emit_json, fail

if TYPE_CHECKING:
    from freegin_ai.adapters.refresh import RefreshDeps, RefreshReport, Via
    from freegin_ai.adapters.scheduled_refresh import ScheduledReport
    from freegin_ai.domain.refresh import Dropped, ParsedSuggestion
    from freegin_ai.domain.workloads import Workload


def register(commands: Any) -> None:
    """Add refresh-models to the `freegin-ai` parser."""
    p = commands.add_parser(
        "refresh-models",
        help="ask an LLM for new candidate models",
        description=(
            "Send the roster and usage statistics of a provider to a reliable LLM (chosen "
            "through the router) and record the models it suggests as pending suggestions. "
            "Suggestions are checked against the models the provider lists, when it lists them."
        ),
    )
    p.add_argument("--provider", help="the provider to refresh (huggingface, google, groq, ...)")
    p.add_argument("--workload", help="the workload to refresh (default: chat)")
    p.add_argument(
        "--all-workloads", action="store_true", help="refresh every workload of the provider"
    )
    p.add_argument(
        "--all",
        action="store_true",
        help=(
            "refresh every workload of every provider with credentials, skipping pairs "
            "refreshed within --max-age (for cron and systemd timers)"
        ),
    )
    p.add_argument(
        "--max-age",
        metavar="AGE",
        help="with --all: skip pairs refreshed within AGE (default: 7d; e.g. 12h, 2w)",
    )
    p.add_argument("--dry-run", action="store_true", help="show the suggestions, write nothing")
    p.add_argument(
        "--via",
        metavar="PROVIDER[/MODEL]",
        help="the LLM that answers (default: [refresh] via in config.toml, else the router's pick)",
    )
    add_json_argument(p)
    p.set_defaults(handler=refresh_models)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of options, if anything."""
    if args.all:
        clashing = [
            name
            for name, given in (
                ("--provider", args.provider),
                ("--workload", args.workload),
                ("--all-workloads", args.all_workloads),
            )
            if given
        ]
        if clashing:
            return f"--all refreshes every provider and workload; drop {', '.join(clashing)}"
        return None
    if args.max_age is not None:
        return "--max-age only applies with --all"
    if not args.provider:
        return "give --provider PROVIDER (or --all for every provider)"
    if args.workload and args.all_workloads:
        return "give --workload or --all-workloads, not both"
    return None


def refresh_models(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import anyio

    from freegin_ai.adapters.refresh import Via
    from freegin_ai.cli.times import before, parse_age
    from freegin_ai.domain.providers import parse_provider
    from freegin_ai.domain.workloads import ALL_WORKLOADS, Workload

    problem = _usage_problem(args)
    if problem is not None:
        return fail(problem)
    # Read before the database is opened, so a typo answers at once.
    via = Via.parse(args.via) if args.via else None
    if args.all:
        max_age = parse_age(args.max_age or "7d")
        before(datetime.now(UTC), args.max_age or "7d")  # a cutoff before year 1 is refused
        return anyio.run(_run_all, args, via, max_age)
    provider = parse_provider(args.provider)
    if args.all_workloads:
        workloads = ALL_WORKLOADS
    else:
        workloads = (Workload.parse(args.workload) if args.workload else Workload.CHAT,)
    return anyio.run(_run_one, args, via, provider, workloads)


@asynccontextmanager
async def _opened(dry_run: bool) -> AsyncIterator[RefreshDeps]:
    """The catalog where the environment says and a router over it (a dry-run router for a
    dry run), as a refresh's dependencies; both closed afterwards."""
    from freegin_ai.adapters.refresh import RefreshDeps
    from freegin_ai.adapters.router import Router
    from freegin_ai.cli.common import open_catalog

    catalog = open_catalog()
    try:
        async with Router.open(
            os.environ, catalog=catalog, dry_run=dry_run, one_shot=True
        ) as router:
            yield RefreshDeps.of(router)
    finally:
        catalog.close()


async def _run_one(
    args: argparse.Namespace, via: Via | None, provider: str, workloads: tuple[Workload, ...]
) -> int:
    from freegin_ai.adapters.refresh import RefreshFailedError, refresh
    from freegin_ai.cli.progress import ProgressBar

    bar = ProgressBar(f"Refreshing {provider}") if len(workloads) > 1 else None
    try:
        async with _opened(args.dry_run) as deps:
            report = await refresh(
                deps,
                provider=provider,
                workloads=workloads,
                via=via,
                dry_run=args.dry_run,
                progress=bar,
            )
    except RefreshFailedError as error:
        return fail(str(error), 1)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        emit_json(report)
        return 0
    if report.listing.problem:
        print(f"note: {report.listing.problem}", file=sys.stderr)
    print(render_dry_run(report) if report.dry_run else render_run(report))
    return 0


async def _run_all(args: argparse.Namespace, via: Via | None, max_age: timedelta) -> int:
    from freegin_ai.adapters.scheduled_refresh import refresh_all
    from freegin_ai.cli.progress import ProgressBar

    # Under cron or systemd nobody watches a bar; its lines would only fill the mail or journal.
    bar = ProgressBar("Refreshing") if sys.stderr.isatty() else None
    try:
        async with _opened(args.dry_run) as deps:
            # The listings first: the refresh then checks suggestions against today's models.
            await _sync_first(deps, args.dry_run)
            report = await refresh_all(
                deps,
                max_age=max_age,
                via=via,
                dry_run=args.dry_run,
                progress=bar,
            )
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        emit_json(report)
    else:
        print(render_scheduled(report, args.max_age or "7d"))
    for result in report.results:
        if result.status == "failed":
            print(f"error: {result.provider}/{result.workload.value}: {result.error}",
                  file=sys.stderr)  # fmt: skip
    if not report.providers:
        return fail("no provider can be called here: add a key with `freegin-ai add-service`", 1)
    return 1 if report.count("failed") else 0


async def _sync_first(deps: RefreshDeps, dry_run: bool) -> None:
    """Run sync-models over every usable provider; its summary and errors go to stderr."""
    from freegin_ai.adapters.model_sync import sync_models
    from freegin_ai.cli.sync_commands import render_sync

    sync = await sync_models(deps.catalog, deps.providers, deps.client, dry_run=dry_run)
    # Under cron or systemd only the errors matter (like the progress bar, see _run_all).
    if sync.results and sys.stderr.isatty():
        print(render_sync(sync), file=sys.stderr)
    for result in sync.results:
        if result.error:
            print(f"error: sync-models {result.provider}: {result.error}", file=sys.stderr)


# -- rendering ------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _ready(value: bool | None) -> str:
    return "unknown" if value is None else str(value).lower()


def _entry(number: int, s: ParsedSuggestion) -> str:
    return "\n".join(
        [
            f"{number}. {s.model} ({s.workload.display})",
            f"   Rationale: {s.rationale or '(none)'}",
            f"   Production ready: {_ready(s.production_ready)}",
            f"   Notes: {s.notes or '(none)'}",
        ]
    )


def _drop_lines(dropped: list[Dropped]) -> list[str]:
    if not dropped:
        return []
    lines = [f"Dropped {_plural(len(dropped), 'suggestion')}:"]
    lines.extend(f"  - {d.model or '(no model name)'}: {d.reason}" for d in dropped)
    return lines


def _unlisted_line(report: RefreshReport) -> list[str]:
    unlisted = [s.model for s in report.kept if s.metadata.get("listed_by_provider") is False]
    return [f"Not listed by {report.provider}: {', '.join(unlisted)}"] if unlisted else []


def render_dry_run(report: RefreshReport) -> str:
    """The guide's dry-run text, then what was dropped and what the provider does not list."""
    kept = report.kept
    head = f"Would insert {_plural(len(kept), 'suggestion')}"
    blocks = ["=== DRY RUN MODE ===\n" + head + (":" if kept else ".")]
    blocks.extend(_entry(n, s) for n, s in enumerate(kept, 1))
    tail = _drop_lines(report.dropped) + _unlisted_line(report)
    if tail:
        blocks.append("\n".join(tail))
    return "\n\n".join(blocks)


def render_run(report: RefreshReport) -> str:
    """Who answered each workload, what was kept and dropped, and what the catalog did."""
    lines: list[str] = []
    for answer in report.answers:
        lines.append(
            f"Asked {answer.provider}/{answer.model} about {report.provider} "
            f"({answer.workload.display}): {len(answer.kept)} kept, "
            f"{len(answer.dropped)} dropped."
        )
        lines.extend(
            f"  dropped {d.model or '(no model name)'}: {d.reason}" for d in answer.dropped
        )
    outcome = report.outcome
    if outcome is not None:
        if outcome.proposed:
            lines.append(
                f"Proposed {_plural(len(outcome.proposed), 'suggestion')}: "
                + ", ".join(outcome.proposed)
            )
        if outcome.revised:
            lines.append(
                f"Revised {_plural(len(outcome.revised), 'pending suggestion')}: "
                + ", ".join(outcome.revised)
            )
        if outcome.skipped:
            lines.append(
                f"Skipped {_plural(len(outcome.skipped), 'suggestion')}: "
                + ", ".join(f"{model} ({why})" for model, why in outcome.skipped)
            )
        if not (outcome.proposed or outcome.revised or outcome.skipped):
            lines.append("Nothing to propose.")
    lines.extend(_unlisted_line(report))
    return "\n".join(lines)


def render_scheduled(report: ScheduledReport, max_age: str) -> str:
    """One line per pair refreshed or failed, then a summary: short enough for a cron mail."""
    lines: list[str] = []
    for r in report.results:
        pair = f"{r.provider}/{r.workload.value}"
        if r.status == "failed":
            lines.append(f"{pair}: FAILED")
        elif r.report is not None:
            lines.append(f"{pair}: {_pair_summary(r.report)}")
    lines.append(
        f"Refreshed {report.count('refreshed')} of {len(report.results)} pairs across "
        f"{_plural(len(report.providers), 'provider')}; {report.count('recent')} refreshed "
        f"within {max_age} skipped; {report.count('failed')} failed."
    )
    return "\n".join(lines)


def _pair_summary(report: RefreshReport) -> str:
    [answer] = report.answers
    via = f"via {answer.provider}/{answer.model}"
    if report.outcome is None:
        return f"would insert {len(answer.kept)}, {len(answer.dropped)} dropped ({via})"
    o = report.outcome
    return (
        f"{len(o.proposed)} proposed, {len(o.revised)} revised, {len(o.skipped)} skipped, "
        f"{len(answer.dropped)} dropped ({via})"
    )
