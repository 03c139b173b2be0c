"""The `freegin-ai` console script: parse, call one catalog method, render.

Imports of the heavy layers happen inside the command handlers, so `--help` and
errors in the arguments answer at once.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

from freegin_ai.cli import (
    catalog_commands,
    chat_commands,
    legacy_commands,
    ops_commands,
    refresh_commands,
    router_commands,
    serve_commands,
    service_commands,
    startup,
    sync_commands,
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
    sync_commands.register(commands)
    ops_commands.register(commands)
    serve_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failure, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    from freegin_ai.adapters.errors import AdapterError, ConfigError
    from freegin_ai.cli.errors import CliError
    from freegin_ai.cli.output import fail
    from freegin_ai.domain.errors import DomainError

    try:
        return handler(args)
    except (DomainError, ConfigError, CliError) as error:
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


def run() -> NoReturn:
    """The console script: run one command, then end the process without tearing the
    interpreter down.

    Finalising every module and object a command loaded (SQLAlchemy, the event classes, the
    HTTP stack) costs 0.1-0.15 s of CPU for nothing once the command is done: a seventh of a
    catalog command, paid again by every process when eight run at once (ADR 0020). So once
    `main` returned, its non-daemon threads ended (waited for, as the usual exit does), the
    exit handlers ran and the output is flushed, the process exits at once with the same code.
    Output that cannot be flushed takes the usual exit instead. It starts lean: see
    `startup.lean` (ADR 0023).
    """
    startup.lean()
    code = main()
    # What the usual exit does first: wait for every non-daemon thread. Most often that is
    # an AnyIO worker the event loop told to stop a moment ago; taking the usual exit for it
    # tore the interpreter down after all, and did so most often under load (ADR 0025).
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what the usual exit runs (logging, anything registered)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        sys.exit(code)  # the usual exit reports it as it always did
    os._exit(code)


if __name__ == "__main__":
    run()
