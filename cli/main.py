"""The `freegin-ai` console script: parse, call one catalog method, render.

Imports of the heavy layers happen inside the command handlers, so `--help` and
errors in the arguments answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from freegin_ai.cli import (
    catalog_commands,
    chat_commands,
    legacy_commands,
    ops_commands,
    refresh_commands,
    router_commands,
    serve_commands,
    service_commands,
)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2, refusing empty values.

    `--as-of ''` or `smoke --model ''` must not quietly mean "not given": a blank value for
    an argument is an error unless it is the argument's own default (`--reason ''`).
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            if isinstance(value, str) and not value.strip() and value != action.default:
                name = "/".join(action.option_strings) or action.metavar or action.dest
                self.error(f"argument {name}: expected a value, got an empty string")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="freegin-ai",
        description=(
            "Keep a catalog of AI models across free and cheap LLM providers: an active "
            "roster per provider and workload, suggestions to review, usage statistics."
        ),
        epilog=(
            "Data lives in ~/.local/share/freegin-ai/app.db (FREEGIN_DATA_DIR changes the "
            "directory; FREEGIN_DATABASE_URL selects another database, e.g. PostgreSQL)."
        ),
    )
    parser.add_argument("--version", action="version", version="freegin-ai 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    catalog_commands.register(commands)
    legacy_commands.register(commands)
    chat_commands.register(commands)
    router_commands.register(commands)
    service_commands.register(commands)
    refresh_commands.register(commands)
    ops_commands.register(commands)
    serve_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    from freegin_ai.adapters.errors import AdapterError, ConfigError
    from freegin_ai.cli.output import fail
    from freegin_ai.cli.times import TimeFormatError
    from freegin_ai.domain.errors import DomainError

    try:
        return handler(args)
    except (DomainError, ConfigError, TimeFormatError) as error:
        return fail(str(error), 2)
    except AdapterError as error:
        return fail(str(error), 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and friends: stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
