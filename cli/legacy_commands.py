"""Legacy commands: import-legacy, which brings in another database of the earlier freegin-ai."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freegin_ai.cli.output import emit_json, fail

if TYPE_CHECKING:
    from freegin_ai.adapters.legacy import ImportReport


def register(commands: Any) -> None:
    """Add the legacy commands to the `freegin-ai` parser."""
    p = commands.add_parser(
        "import-legacy",
        help="import a database of the earlier freegin-ai",
        description=(
            "Import the roster, suggestions and usage of a database written by the earlier "
            "freegin-ai (its provider_models, provider_model_suggestions and provider_usage "
            "tables) into the catalog, in one transaction. The file is only read. Importing "
            "the same file again appends nothing. Rows that cannot be read are skipped and "
            "listed; credentials and provider health are not imported. The catalog's own "
            "database, if it is the earlier tool's, is imported in place on first use."
        ),
    )
    p.add_argument("path", metavar="PATH", help="the earlier tool's app.db (or a copy of it)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=import_legacy)


def import_legacy(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.catalog import Catalog
    from freegin_ai.adapters.legacy import (
        LegacyImportError,
        import_legacy_file,
        read_legacy_layout,
    )
    from freegin_ai.adapters.settings import database_url
    from freegin_ai.cli.progress import ProgressBar

    path = Path(args.path).expanduser()
    try:
        read_legacy_layout(path)  # a bad file fails before the catalog is opened
    except LegacyImportError as error:
        return fail(str(error))
    bar = ProgressBar("Rebuilding read tables")
    try:
        # Not seeded yet: the defaults would take the place of the imported roster.
        catalog = Catalog.open(database_url(os.environ), progress=bar, seed=False)
    finally:
        bar.close()
    try:
        bar = ProgressBar("Importing")
        try:
            report = import_legacy_file(catalog.store, path, progress=bar)
        except LegacyImportError as error:
            return fail(str(error))
        finally:
            bar.close()
        catalog.projector.catch_up()
        catalog.seed_defaults()
    finally:
        catalog.close()
    if args.json:
        emit_json(report)
        return 0
    print(render_report(report))
    return 0


def render_report(report: ImportReport) -> str:
    """The report for people: what was appended, skipped and left alone."""
    if report.nothing_new:
        lines = [
            f"Already imported: {report.source} ({report.already_imported} rows already in "
            "the catalog; nothing appended)."
        ]
    else:
        lines = [f"Imported {report.source}: {report.events} events."]
        statuses = ", ".join(f"{n} {status}" for status, n in report.suggestions.items())
        lines += [
            f"  roster entries  {report.roster_entries:>8}  ({report.retired} retired)",
            f"  suggestions     {report.suggestion_count:>8}"
            + (f"  ({statuses})" if statuses else ""),
            f"  usage rows      {report.usage_rows:>8}"
            + (f"  ({report.usage_without_model} without a model)" if report.usage_rows else ""),
        ]
        if report.already_imported:
            lines.append(
                f"{report.already_imported} rows were already in the catalog; "
                "nothing appended for them."
            )
    if report.updated_at_not_kept:
        lines.append(
            f"Changed after adoption in the earlier tool: {report.updated_at_not_kept} active "
            "model(s); what changed is unknown, so only the adoption time is kept."
        )
    if report.missing_usage_columns:
        lines.append(
            "The file's provider_usage has no "
            f"{', '.join(report.missing_usage_columns)} column(s): those values are unknown."
        )
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)} rows:")
        lines += [f"  {s.table} {s.row}: {s.reason}" for s in report.skipped]
    for old, new in report.tables_renamed.items():
        lines.append(f"Kept {old} as {new}.")
    if report.extra_tables:
        lines.append(
            f"Not imported: {', '.join(report.extra_tables)} (add credentials again with "
            "add-service)."
        )
    return "\n".join(lines)
