"""Legacy commands: import-legacy, which brings in another database of the earlier freegin-ai."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from freegin_ai.cli.common import add_json_argument
from freegin_ai.cli.output import emit_json, fail


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
    add_json_argument(p, "the report as JSON")
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
    from freegin_ai.cli.render import render_import_report

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
    print(render_import_report(report))
    return 0
