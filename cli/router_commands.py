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
        "--wait",
        metavar="DURATION",
        help="when every candidate is out of quota or cooling down, wait up to this long "
        "(e.g. 30s, 2m) for the first to come back instead of failing",
    )
    p.add_argument(
        "--verbose", action="store_true", help="print the routing decision and attempts to stderr"
    )
    p.set_defaults(handler=generate)

    p = commands.add_parser(
        "status",
        help="show providers and models: credentials, cooldowns, free-tier quota",
        description=(
            "Per provider: whether it can be called, where its key comes from, health. Per "
            "model: requests and tokens used / limit this minute and today, the next reset, "
            "and whether the router would route to it now, or why not."
        ),
    )
    p.add_argument("--provider", help="only this provider")
    add_json_argument(p)
    p.set_defaults(handler=status)

    p = commands.add_parser(
        "clear-provider",
        help="route to a sidelined provider (out of credit) or a gone model again",
        description=(
            "A provider that answered 402 / out of credit is sidelined until a call succeeds "
            "or you clear it here (after topping up); with --model, a model that answered 410 "
            "Gone is cleared instead. Recorded as a ProviderCleared event."
        ),
    )
    p.add_argument("provider", help="provider name or alias")
    p.add_argument("--model", help="clear this model (marked gone) instead of the provider")
    p.add_argument("--reason", help="why (kept in the event)")
    p.set_defaults(handler=clear_provider)


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
    wait = None
    if args.wait is not None:
        from freegin_ai.cli.errors import TimeFormatError
        from freegin_ai.cli.times import parse_duration

        try:
            wait = parse_duration(args.wait)
        except TimeFormatError as error:
            return fail(f"--wait: {error}")
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
        wait=wait,
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
        quotas = router.quota_status(only)
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
                    "models": [_quota_json(q) for q in quotas if q.provider == name],
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
        if row["usable"]:
            for q in row["models"]:
                print(f"    {q['model']}: {_quota_line(q)}")
    return 0


def _quota_json(q: Any) -> dict[str, Any]:
    windows: dict[str, dict[str, Any]] = {}
    for w in q.windows:
        windows.setdefault(w.window, {"resets_at": _stamp(w.resets_at)})[w.measure] = {
            "used": w.used,
            "limit": w.limit,
            "remaining": w.remaining,
        }
    return {
        "model": q.model,
        "bucket": q.bucket,
        "minute": windows.get("minute"),
        "day": windows.get("day"),
        "next_reset": _stamp(q.next_reset),
        "routable": q.routable,
        "why": q.why,
        "back_at": _stamp(q.back_at),
        "limits_source": q.limits_source or None,
    }


def _stamp(value: Any) -> str | None:
    return None if value is None else str(value.isoformat().replace("+00:00", "Z"))


def _quota_line(q: dict[str, Any]) -> str:
    parts = []
    for window, label in (("minute", "this minute"), ("day", "today")):
        counts = q[window] or {}
        shown = []
        for measure, short in (("requests", "req"), ("tokens", "tok")):
            c = counts.get(measure) or {}
            if c.get("limit") is not None or c.get("used"):
                limit = "?" if c.get("limit") is None else str(c["limit"])
                shown.append(f"{c.get('used', 0)}/{limit} {short}")
        if shown:
            parts.append(f"{label} {', '.join(shown)}")
    if q["next_reset"]:
        parts.append(f"next reset {q['next_reset']}")
    parts.append("routable" if q["routable"] else f"not routable: {q['why']}")
    return " · ".join(parts)


def clear_provider(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.catalog import Catalog
    from freegin_ai.adapters.settings import database_url
    from freegin_ai.domain.names import check_model_name
    from freegin_ai.domain.providers import parse_provider

    parse_provider(args.provider)  # names are checked before the database is opened
    if args.model:
        check_model_name(args.model)
    catalog = Catalog.open(database_url(os.environ))
    try:
        catalog.clear_provider(args.provider, args.model or "", args.reason)
    finally:
        catalog.close()
    what = f"model {args.model!r} of {args.provider}" if args.model else args.provider
    print(f"Cleared {what}: the router will try it again")
    return 0


def anyio_close(router: Any) -> None:
    import anyio

    anyio.run(router.aclose)
    router.catalog.close()
