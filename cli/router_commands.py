"""Router commands: generate (send a prompt through the router) and status (provider health)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from freegin_ai.cli.common import add_json_argument
from freegin_ai.cli.output import emit_json, fail


def register(commands: Any) -> None:
    p = commands.add_parser(
        "generate",
        help="send a prompt through the router",
        description=(
            "Send a prompt to the best model for the workload, falling back to the next "
            "candidate on failure. The prompt comes from --prompt, --prompt-file or stdin."
        ),
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="the prompt text")
    source.add_argument("--prompt-file", type=Path, help="read the prompt from a file")
    p.add_argument("--provider", help="use this provider (a hard choice unless --fallback)")
    p.add_argument("--workload", default="chat", help="workload type (default: chat)")
    p.add_argument("--model", help="use this model as given")
    p.add_argument(
        "--fallback", action="store_true", help="with --provider: fall back to other providers"
    )
    p.add_argument("--system", help="a system prompt")
    p.add_argument("--max-tokens", type=int, help="cap on the answer's length in tokens")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument(
        "--verbose", action="store_true", help="print the routing decision and attempts to stderr"
    )
    p.set_defaults(handler=generate)

    p = commands.add_parser(
        "status",
        help="show providers: credentials, and models cooling down",
        description="Per provider: whether it can be called, where its key comes from, health.",
    )
    p.add_argument("--provider", help="only this provider")
    add_json_argument(p)
    p.set_defaults(handler=status)


def _read_prompt(args: argparse.Namespace) -> str | None:
    """The prompt as text; bytes that are not UTF-8 are refused (InvalidPromptError)."""
    from freegin_ai.domain.prompts import check_prompt, decode_prompt

    if args.prompt is not None:
        # An argument that was not UTF-8 arrives with surrogate escapes: refused here.
        return check_prompt(str(args.prompt))
    if args.prompt_file is not None:
        try:
            data = Path(args.prompt_file).read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read {args.prompt_file}: {error.strerror}") from None
        return decode_prompt(data, str(args.prompt_file))
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return decode_prompt(sys.stdin.buffer.read(), "stdin")


def generate(args: argparse.Namespace) -> int:
    import anyio

    from freegin_ai.adapters.router import (
        AllAttemptsFailedError,
        GenerateRequest,
        NoCandidateError,
        Router,
    )
    from freegin_ai.domain.names import check_model_name
    from freegin_ai.domain.prompts import check_prompt
    from freegin_ai.domain.providers import parse_provider
    from freegin_ai.domain.workloads import Workload

    try:
        prompt = _read_prompt(args)
    except ValueError as error:
        return fail(str(error))
    if not prompt or not prompt.strip():
        return fail("no prompt: give --prompt, --prompt-file, or pipe it on stdin")
    if args.max_tokens is not None and args.max_tokens <= 0:
        return fail("--max-tokens must be positive")
    workload = Workload.parse(args.workload)
    provider = parse_provider(args.provider) if args.provider else None
    # Checked before anything is opened: bad input is the caller's, not the provider's.
    model = check_model_name(args.model) if args.model is not None else None
    if args.system is not None:
        check_prompt(args.system, "system prompt")
    request = GenerateRequest(
        prompt=prompt,
        workload=workload,
        provider=provider,
        model=model,
        fallback=args.fallback,
        system=args.system,
        max_tokens=args.max_tokens,
    )

    async def run() -> int:
        async with Router.open(os.environ) as router:
            if args.verbose:
                _print_decision(router.explain(request))
            try:
                result = await router.generate(request)
            except NoCandidateError as error:
                return fail(str(error), 1)
            except AllAttemptsFailedError as error:
                print("error: every candidate failed:", file=sys.stderr)
                for n, a in enumerate(error.attempts, 1):
                    print(f"  {n}. {a.error} (after {a.latency_ms} ms)", file=sys.stderr)
                return 1
        if args.verbose:
            for a in result.attempts:
                state = "ok" if a.success else f"failed ({a.error_kind}): {a.error}"
                print(f"attempt {a.provider}/{a.model}: {state} in {a.latency_ms} ms",
                      file=sys.stderr)  # fmt: skip
        if args.format == "json":
            emit_json(
                {
                    "text": result.text,
                    "provider": result.provider,
                    "model": result.model,
                    "latency_ms": result.latency_ms,
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.total_tokens,
                    "cached_tokens": result.cached_tokens,
                    "reasoning_tokens": result.reasoning_tokens,
                    "cost_micros": result.cost_micros,
                    "attempts": result.attempts,
                }
            )
        else:
            print(result.text)
        return 0

    return anyio.run(run)


def _print_decision(decision: Any) -> None:
    print(f"routing: {decision.mode}, workload {decision.workload.value}", file=sys.stderr)
    for i, c in enumerate(decision.candidates, 1):
        extra = f", {c.consecutive_failures} recent failures" if c.consecutive_failures else ""
        print(f"  {i}. {c.provider}/{c.model} (priority {c.priority}{extra})", file=sys.stderr)
    for s in decision.skipped:
        print(f"  skipped {s.provider}/{s.model}: {s.reason}", file=sys.stderr)


def status(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.credentials import CredentialStore
    from freegin_ai.adapters.router import Router
    from freegin_ai.cli.output import warn_exposed
    from freegin_ai.domain.providers import PROVIDERS, parse_provider
    from freegin_ai.projections.queries import list_health

    only = parse_provider(args.provider) if args.provider else None
    router = Router.open(os.environ)
    if isinstance(router.providers.credentials, CredentialStore):
        warn_exposed(router.providers.credentials)
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
        from freegin_ai.cli.render import render_not_applied

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
