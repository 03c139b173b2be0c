"""Catalog commands: list-models, adopt-model, retire-model, reject-suggestion, history, replay."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from freegin_ai.cli.output import emit_json

if TYPE_CHECKING:
    from freegin_ai.adapters.catalog import Catalog


def open_catalog() -> Catalog:
    """Open the catalog where the environment says, showing progress if tables are rebuilt."""
    from freegin_ai.adapters.catalog import Catalog
    from freegin_ai.adapters.settings import database_url
    from freegin_ai.cli.progress import ProgressBar

    bar = ProgressBar("Preparing the catalog")
    try:
        catalog = Catalog.open(database_url(os.environ), progress=bar)
    finally:
        bar.close()
    if catalog.imported is not None:
        from freegin_ai.cli.legacy_commands import render_report

        print("Imported the database of the earlier freegin-ai:", file=sys.stderr)
        print(render_report(catalog.imported), file=sys.stderr)
    return catalog


def register(commands: Any) -> None:
    """Add the catalog commands to the `freegin-ai` parser."""
    p = commands.add_parser(
        "list-models",
        help="show the active roster (and optionally suggestions)",
        description="Show active models per provider and workload, lowest priority number first.",
    )
    p.add_argument("--provider", help="only this provider (huggingface, google, groq, ...)")
    p.add_argument("--workload", help="only this workload (chat, code, summarization, ...)")
    p.add_argument("--include-suggestions", action="store_true", help="also show suggestions")
    p.add_argument("--include-retired", action="store_true", help="also show retired models")
    p.add_argument(
        "--as-of",
        metavar="TIME",
        help="the roster as it stood at TIME (2026-11-01, 2026-11-01T12:00Z, or an age: 7d)",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=list_models)

    p = commands.add_parser(
        "adopt-model",
        help="move a model into the active roster",
        description=(
            "Adopt a model for a provider and workload. Adopting an active model changes its "
            "priority (and rationale, if given); adopting a retired one reinstates it; a "
            "pending suggestion for the model is marked adopted."
        ),
    )
    p.add_argument("provider", help="provider name (huggingface, google, groq, ...)")
    p.add_argument("model", help="model identifier, e.g. mistralai/Mistral-7B-Instruct-v0.2")
    p.add_argument("--workload", default="chat", help="workload type (default: chat)")
    p.add_argument(
        "--priority",
        type=int,
        help=(
            "0 to 2147483647, lower wins "
            "(default: 100 for a new model, unchanged for an existing one)"
        ),
    )
    p.add_argument("--rationale", help="why this model (kept when not given)")
    p.set_defaults(handler=adopt_model)

    p = commands.add_parser(
        "retire-model",
        help="take a model out of the active roster",
        description="Retire an active model; it stays in the catalog with status 'retired'.",
    )
    p.add_argument("provider")
    p.add_argument("model")
    p.add_argument("--workload", required=True, help="workload type (chat, code, ...)")
    p.add_argument("--reason", default="", help="why it is retired (kept in the history)")
    p.set_defaults(handler=retire_model)

    p = commands.add_parser(
        "reject-suggestion",
        help="turn a suggestion down",
        description="Mark a pending (or on-trial) suggestion rejected.",
    )
    p.add_argument("provider")
    p.add_argument("model")
    p.add_argument("--workload", default="chat", help="workload type (default: chat)")
    p.add_argument("--reason", default="", help="why (kept in the history)")
    p.set_defaults(handler=reject_suggestion)

    p = commands.add_parser(
        "history",
        help="the audit trail of roster and suggestion changes",
        description="Every catalog event, oldest first: when, what happened, and its details.",
    )
    p.add_argument("--provider")
    p.add_argument("--workload")
    p.add_argument("--model")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=history)

    p = commands.add_parser(
        "replay",
        help="rebuild every read table from the event log",
        description=(
            "Replay the event log into emptied read tables, then report whether the rebuilt "
            "tables equal what was there."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=replay)


def _workload(text: str | None) -> Any:
    from freegin_ai.domain.workloads import Workload

    return Workload.parse(text) if text else None


def check_names(provider: str, workload: str, model: str) -> None:
    """Refuse bad names before the database is opened (opening may seed it)."""
    from freegin_ai.domain.names import check_model_name

    _provider(provider), _workload(workload), check_model_name(model)


def _provider(text: str | None) -> str | None:
    from freegin_ai.domain.providers import parse_provider

    return parse_provider(text) if text else None


def list_models(args: argparse.Namespace) -> int:
    from freegin_ai.cli.render import render_catalog
    from freegin_ai.cli.times import parse_time

    provider = _provider(args.provider)
    workload = _workload(args.workload)
    # Read before opening: bad input must fail before anything (even seeding) is written.
    as_of = parse_time(args.as_of, datetime.now(UTC)) if args.as_of is not None else None
    quick = None
    if as_of is None:
        from freegin_ai.adapters.quick_read import read_catalog
        from freegin_ai.adapters.settings import database_url

        quick = read_catalog(
            database_url(os.environ),
            provider=provider,
            workload=workload.value if workload else None,
            include_retired=args.include_retired,
            include_suggestions=args.include_suggestions,
        )
    if quick is not None:
        roster, suggestions = quick
    else:
        roster, suggestions = _read_catalog(args, provider, workload, as_of)
    if args.json:
        payload: dict[str, Any] = {"models": roster}
        if suggestions is not None:
            payload["suggestions"] = suggestions
        emit_json(payload)
        return 0
    if not roster and not suggestions:
        where = " ".join(
            f"{k}={v}" for k, v in (("provider", provider), ("workload", args.workload)) if v
        )
        print(f"No models{' for ' + where if where else ''}.")
        return 0
    print(render_catalog(roster, suggestions))
    return 0


def _read_catalog(
    args: argparse.Namespace, provider: str | None, workload: Any, as_of: datetime | None
) -> tuple[list[Any], list[Any] | None]:
    """The full path: open (catching up, rebuilding or seeding as needed), then read."""
    catalog = open_catalog()
    try:
        suggestions = None
        if as_of is not None:
            roster = catalog.roster_as_of(
                as_of, provider=provider, workload=workload, include_retired=args.include_retired
            )
            if args.include_suggestions:
                suggestions = catalog.suggestions_as_of(as_of, provider=provider, workload=workload)
        else:
            roster = catalog.list_models(
                provider=provider, workload=workload, include_retired=args.include_retired
            )
            if args.include_suggestions:
                suggestions = catalog.list_suggestions(provider=provider, workload=workload)
    finally:
        catalog.close()
    return roster, suggestions


def adopt_model(args: argparse.Namespace) -> int:
    from freegin_ai.cli.render import render_roster_block
    from freegin_ai.domain.commands import AdoptModel
    from freegin_ai.domain.names import check_priority

    if args.priority is not None:
        check_priority(args.priority)  # before anything is opened or written
    command = AdoptModel(
        provider=args.provider,
        workload=args.workload,
        model=args.model,
        priority=args.priority,
        rationale=args.rationale,
    )
    check_names(command.provider, command.workload, command.model)
    catalog = open_catalog()
    try:
        outcome = catalog.adopt_model(command)
        rows = catalog.list_models(provider=outcome.provider, workload=outcome.workload)
    finally:
        catalog.close()
    verb = {
        "adopted": "Adopted",
        "reinstated": "Reinstated",
        "reprioritised": "Adopted",
        "unchanged": "Kept",
    }[outcome.action]
    print(
        f"{verb} model '{outcome.model}' for provider '{outcome.provider}' and workload "
        f"'{outcome.workload.display}' with priority {outcome.priority}"
    )
    if outcome.suggestion_marked:
        print("The pending suggestion for this model is now marked adopted.")
    print()
    print(render_roster_block(outcome.provider, outcome.workload, rows))
    return 0


def retire_model(args: argparse.Namespace) -> int:
    from freegin_ai.domain.commands import RetireModel

    check_names(args.provider, args.workload, args.model)
    provider, workload = _provider(args.provider), _workload(args.workload)
    catalog = open_catalog()
    try:
        catalog.retire_model(
            RetireModel(
                provider=provider or "",
                workload=workload.value,
                model=args.model,
                reason=args.reason,
            )
        )
    finally:
        catalog.close()
    print(
        f"Retired model '{args.model.strip()}' for provider '{provider}' and workload "
        f"'{workload.display}'"
    )
    return 0


def reject_suggestion(args: argparse.Namespace) -> int:
    from freegin_ai.domain.commands import RejectSuggestion

    check_names(args.provider, args.workload, args.model)
    provider, workload = _provider(args.provider), _workload(args.workload)
    catalog = open_catalog()
    try:
        catalog.reject_suggestion(
            RejectSuggestion(
                provider=provider or "",
                workload=workload.value,
                model=args.model,
                reason=args.reason,
            )
        )
    finally:
        catalog.close()
    print(f"Rejected suggestion '{args.model.strip()}' for {provider} / {workload.display}")
    return 0


def history(args: argparse.Namespace) -> int:
    from freegin_ai.cli.render import details_text, workload_label

    provider, workload = _provider(args.provider), _workload(args.workload)
    catalog = open_catalog()
    try:
        entries = catalog.history(provider=provider, workload=workload, model=args.model)
    finally:
        catalog.close()
    if args.json:
        emit_json(entries)
        return 0
    if not entries:
        print("No history.")
        return 0
    for e in entries:
        print(
            f"{e.at}  {e.kind:<21} {e.provider}/{workload_label(e.workload)}  {e.model}"
            f"  {details_text(e.details)}".rstrip()
        )
    return 0


def replay(args: argparse.Namespace) -> int:
    from freegin_ai.cli.progress import ProgressBar

    catalog = open_catalog()
    bar = ProgressBar("Replaying")
    try:
        report = catalog.replay(progress=bar)
    finally:
        bar.close()
        catalog.close()
    if args.json:
        emit_json(report)
        return 0
    print(f"Replayed {report.events} events (log position {report.position}).")
    for check in report.tables:
        state = "equal" if check.equal else f"DIFFERED (was {check.rows_before} rows)"
        print(f"  {check.table:<28} {check.rows_after:>9} rows  {state}")
    if report.equal:
        print("The rebuilt tables equal what was there.")
    else:
        print("Some tables differed from the log; they now hold what the log says.")
    if report.not_applied:
        print(render_not_applied(report.not_applied))
    return 0


def render_not_applied(failures: Any) -> str:
    """The events the read side recorded as not applied, one line each (ADR 0009)."""
    lines = [
        f"{len(failures)} event{'s' if len(failures) != 1 else ''} could not be applied and "
        "were skipped (the log keeps them):"
    ]
    lines += [f"  #{f.position} {f.kind} [{f.projection}]: {f.reason}" for f in failures]
    return "\n".join(lines)
