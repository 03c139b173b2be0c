"""What every command module shares: opening the catalog, reading names before anything is
opened, and the argument blocks (provider, model, workload, filters, --json) written once.

Command modules import this module and `output`, never each other. Heavy layers are imported
inside functions so `--help` and bad arguments answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from freegin_ai.adapters.catalog import Catalog
    from freegin_ai.domain.workloads import Workload


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
        from freegin_ai.cli.render import render_import_report

        print("Imported the database of the earlier freegin-ai:", file=sys.stderr)
        print(render_import_report(catalog.imported), file=sys.stderr)
    return catalog


def provider_option(text: str | None) -> str | None:
    """A provider name or alias as its canonical name; None when not given."""
    from freegin_ai.domain.providers import parse_provider

    return parse_provider(text) if text else None


def workload_option(text: str | None) -> Workload | None:
    """A workload name as a Workload; None when not given."""
    from freegin_ai.domain.workloads import Workload

    return Workload.parse(text) if text else None


def check_names(provider: str, workload: str, model: str) -> tuple[str, Workload]:
    """Refuse bad names before the database is opened (opening may seed it); returns the
    canonical provider and the workload."""
    from freegin_ai.domain.names import check_model_name
    from freegin_ai.domain.providers import parse_provider
    from freegin_ai.domain.workloads import Workload

    canonical, parsed = parse_provider(provider), Workload.parse(workload)
    check_model_name(model)
    return canonical, parsed


def add_model_arguments(
    p: argparse.ArgumentParser, *, workload_default: str | None = "chat"
) -> None:
    """PROVIDER MODEL [--workload]: the roster entry or suggestion a command acts on.

    Without a default, --workload is required.
    """
    p.add_argument("provider", help="provider name (huggingface, google, groq, ...)")
    p.add_argument("model", help="model identifier, e.g. mistralai/Mistral-7B-Instruct-v0.2")
    if workload_default is None:
        p.add_argument("--workload", required=True, help="workload type (chat, code, ...)")
    else:
        p.add_argument(
            "--workload",
            default=workload_default,
            help=f"workload type (default: {workload_default})",
        )


def add_filter_arguments(p: argparse.ArgumentParser, *, model: bool = True) -> None:
    """--provider, --workload (and --model): only what matches."""
    p.add_argument("--provider", help="only this provider (huggingface, google, groq, ...)")
    p.add_argument("--workload", help="only this workload (chat, code, summarization, ...)")
    if model:
        p.add_argument("--model", help="only this model")


def add_json_argument(p: argparse.ArgumentParser, what: str = "JSON for scripts") -> None:
    """--json: print JSON instead of text."""
    p.add_argument("--json", action="store_true", help=f"print {what}")
