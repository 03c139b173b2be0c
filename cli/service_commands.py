"""Credential commands: add-service, list-services, remove-service.

Keys live in a 0600 file in the config directory, never in the event log; environment
variables take precedence over stored keys.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from freegin_ai.cli.output import emit_json, fail


def register(commands: Any) -> None:
    p = commands.add_parser(
        "add-service",
        help="store an API key for a provider",
        description=(
            "Store a provider's API key in the credential file (mode 0600). On a terminal the "
            "key is asked for without echo; otherwise it is read from stdin."
        ),
    )
    p.add_argument("provider")
    p.set_defaults(handler=add_service)

    p = commands.add_parser(
        "list-services",
        help="show where each provider's key comes from",
        description="For every provider: key from the environment, stored, or none.",
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=list_services)

    p = commands.add_parser(
        "remove-service",
        help="delete a provider's stored API key",
        description="Remove a stored key (keys in environment variables are not affected).",
    )
    p.add_argument("provider")
    p.set_defaults(handler=remove_service)


def _store() -> Any:
    from freegin_ai.adapters.credentials import CredentialStore, default_credentials_path

    return CredentialStore(default_credentials_path(os.environ))


def add_service(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.providers.registry import get_spec

    spec = get_spec(args.provider)
    if not spec.needs_key:
        return fail(f"{spec.name} needs no API key")
    if sys.stdin is not None and sys.stdin.isatty():
        key = getpass.getpass(f"API key for {spec.name}: ")
    else:
        key = sys.stdin.readline() if sys.stdin is not None else ""
    from freegin_ai.adapters.credentials import key_problem

    key = key.strip()
    problem = key_problem(key)
    if problem is not None:
        return fail(problem)  # the caller's input: exit 2, nothing written
    _store().set(spec.name, key)
    print(f"Stored the API key for {spec.name}.")
    return 0


def list_services(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.providers.registry import PROVIDER_SPECS, key_source
    from freegin_ai.domain.providers import PROVIDERS

    store = _store()
    warn_exposed(store)
    rows = []
    for name in PROVIDERS:
        spec = PROVIDER_SPECS[name]
        source = key_source(name, os.environ, store) if spec.needs_key else "not needed"
        rows.append({"provider": name, "key": source})
    if args.json:
        emit_json(rows)
    else:
        for row in rows:
            print(f"{row['provider']:<12} {row['key']}")
    return 0


def warn_exposed(store: Any) -> None:
    """Warn on stderr when the credentials file can be read by group or others."""
    exposed = store.exposure()
    if exposed is not None:
        print(f"warning: {exposed}", file=sys.stderr)


def remove_service(args: argparse.Namespace) -> int:
    from freegin_ai.domain.providers import parse_provider

    name = parse_provider(args.provider)
    if _store().remove(name):
        print(f"Removed the stored API key for {name}.")
        return 0
    return fail(f"no stored API key for {name}", 1)
