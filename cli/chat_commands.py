"""Conversation commands: `generate` (one request: a prompt or a conversation, tools, JSON,
streamed or whole) and `chat` (an interactive conversation, each answer streamed)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freegin_ai.cli import startup
from freegin_ai.cli.output import emit_json, fail

if TYPE_CHECKING:
    from freegin_ai.adapters.router import GenerateResult, Router
    from freegin_ai.domain.chat import GenerateRequest, Message, ResponseFormat, Tool


def add_request_options(p: argparse.ArgumentParser) -> None:
    """Routing and sampling options shared by generate and chat."""
    p.add_argument("--provider", help="use this provider (a hard choice unless --fallback)")
    p.add_argument("--workload", default="chat", help="workload type (default: chat)")
    p.add_argument("--model", help="use this model as given")
    p.add_argument(
        "--fallback", action="store_true", help="with --provider: fall back to other providers"
    )
    p.add_argument("--system", help="a system prompt")
    p.add_argument("--max-tokens", type=int, help="cap on the answer's length in tokens")
    p.add_argument("--temperature", type=float, help="sampling temperature, 0 to 2")
    p.add_argument("--top-p", type=float, help="nucleus sampling, 0 to 1")
    p.add_argument("--seed", type=int, help="ask for reproducible sampling where supported")
    p.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="a stop sequence (repeatable)"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="ask for a JSON object as the answer")
    fmt.add_argument(
        "--json-schema",
        type=Path,
        metavar="FILE",
        help="ask for JSON following this JSON Schema (or an OpenAI json_schema object)",
    )
    p.add_argument(
        "--tools",
        type=Path,
        metavar="FILE",
        help="a JSON list of OpenAI function tools the model may call",
    )
    p.add_argument(
        "--wait",
        metavar="DURATION",
        help="when every candidate is out of quota or cooling down, wait up to this long "
        "(e.g. 30s, 2m) for the first to come back instead of failing",
    )
    p.add_argument(
        "--labels",
        help="comma-separated candidate labels, for zero-shot classification models "
        "(e.g. facebook/bart-large-mnli): the answer is the best label",
    )


def register(commands: Any) -> None:
    p = commands.add_parser(
        "generate",
        help="send a prompt or a conversation through the router",
        description=(
            "Send a prompt (or a conversation) to the best model for the workload, falling back "
            "to the next candidate on failure. The prompt comes from --prompt, --prompt-file or "
            "stdin; --messages-file gives earlier turns (the prompt, if any, follows them). "
            "Text streams as it arrives when stdout is a terminal (--stream / --no-stream). "
            "Tool calls are printed as a JSON list in OpenAI's shape."
        ),
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--prompt", help="the prompt text")
    source.add_argument("--prompt-file", type=Path, help="read the prompt from a file")
    p.add_argument(
        "--messages-file",
        type=Path,
        metavar="FILE",
        help="a JSON list of OpenAI chat messages (system, user, assistant, tool)",
    )
    add_request_options(p)
    p.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print text as it arrives (default: when stdout is a terminal and --format text)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument(
        "--verbose", action="store_true", help="print the routing decision and attempts to stderr"
    )
    p.set_defaults(handler=generate)

    p = commands.add_parser(
        "chat",
        help="an interactive conversation, each answer streamed",
        description=(
            "Talk with the router's choice of model: type a message and press Enter; the answer "
            "streams back and the conversation goes on. Commands: /route prints how the last "
            "answer was routed (candidates, skips, attempts), /reset starts over, /exit leaves. "
            "Ctrl-C stops an answer (at the prompt: leaves); Ctrl-D leaves."
        ),
    )
    add_request_options(p)
    p.add_argument(
        "--verbose", action="store_true", help="print the routing decision after every answer"
    )
    p.set_defaults(handler=chat)


# --- building the request ---------------------------------------------------------------


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text") from None


def _prompt(args: argparse.Namespace, has_messages: bool) -> str | None:
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
    if has_messages or sys.stdin is None or sys.stdin.isatty():
        return None
    return decode_prompt(sys.stdin.buffer.read(), "stdin")


def _response_format(args: argparse.Namespace) -> ResponseFormat | None:
    from freegin_ai.domain.chat import (
        JsonObjectFormat,
        JsonSchema,
        JsonSchemaFormat,
        decode_schema,
    )

    if args.json:
        return JsonObjectFormat()
    if args.json_schema is None:
        return None
    schema = decode_schema(_read(args.json_schema, "schema file"))
    if isinstance(schema.get("schema"), dict) and isinstance(schema.get("name"), str):
        # OpenAI's json_schema object: {"name": ..., "schema": {...}, "strict": ...}
        strict = schema.get("strict")
        return JsonSchemaFormat(
            json_schema=JsonSchema(
                name=schema["name"],
                schema=schema["schema"],
                description=schema.get("description"),
                strict=strict if isinstance(strict, bool) else True,
            )
        )
    title = schema.get("title")
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in title) if title else ""
    return JsonSchemaFormat(
        json_schema=JsonSchema(name=name[:64] or "answer", schema=schema, strict=True)
    )


def _tools(args: argparse.Namespace) -> tuple[Tool, ...]:
    from freegin_ai.domain.chat import decode_tools

    if args.tools is None:
        return ()
    return decode_tools(_read(args.tools, "tools file"))


def build_request(
    args: argparse.Namespace, messages: tuple[Message, ...], prompt: str | None
) -> GenerateRequest:
    """The request from the command line (raises ValueError or InvalidRequestError)."""
    from freegin_ai.domain.chat import GenerateRequest, UserMessage, validate_request
    from freegin_ai.domain.names import check_model_name
    from freegin_ai.domain.providers import parse_provider
    from freegin_ai.domain.workloads import Workload

    turns = messages + ((UserMessage(content=prompt),) if prompt is not None else ())
    wait = None
    if args.wait is not None:
        from freegin_ai.cli.errors import TimeFormatError
        from freegin_ai.cli.times import parse_duration

        try:
            wait = parse_duration(args.wait)
        except TimeFormatError as error:
            raise ValueError(f"--wait: {error}") from None
    labels: tuple[str, ...] = ()
    if args.labels is not None:
        labels = tuple(dict.fromkeys(x.strip() for x in args.labels.split(",") if x.strip()))
        if not labels:
            raise ValueError("--labels needs at least one label, e.g. --labels positive,negative")
    request = GenerateRequest(
        messages=turns,
        system=args.system,
        tools=_tools(args),
        response_format=_response_format(args),
        stop=tuple(args.stop),
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        workload=Workload.parse(args.workload),
        provider=parse_provider(args.provider) if args.provider else None,
        # Checked before anything is opened: bad input is the caller's, not the provider's.
        model=check_model_name(args.model) if args.model is not None else None,
        fallback=args.fallback,
        wait=wait,
        labels=labels,
    )
    validate_request(request)
    return request


# --- generate ---------------------------------------------------------------------------


def generate(args: argparse.Namespace) -> int:
    from freegin_ai.domain.chat import decode_messages

    try:
        messages = (
            decode_messages(_read(args.messages_file, "messages file"))
            if args.messages_file is not None
            else ()
        )
        prompt = _prompt(args, bool(messages))
    except ValueError as error:
        return fail(str(error))
    if prompt is not None and not prompt.strip():
        prompt = None
    if prompt is None and not messages:
        return fail("no prompt: give --prompt, --prompt-file, --messages-file, or pipe it on stdin")
    try:
        request = build_request(args, messages, prompt)
    except ValueError as error:
        return fail(str(error))
    stream = args.stream
    if stream is None:
        stream = args.format == "text" and sys.stdout.isatty()
    if stream and args.format == "json":
        return fail("--stream prints text: leave out --format json")
    return _generate(args, request, stream)


def _generate(args: argparse.Namespace, request: GenerateRequest, stream: bool) -> int:
    from freegin_ai.adapters.router import (
        AllAttemptsFailedError,
        NoCandidateError,
        Router,
        StreamInterruptedError,
    )

    # One request and out: no log follower (its own usage is caught up when it closes), and
    # the "auto" transport is the one that starts quickest (ADR 0022).
    router = Router.open(os.environ, follow=False, one_shot=True)
    closed = False
    try:
        if args.verbose:
            print_decision(router.explain(request))
        try:
            if stream:
                result = _stream_out(router, request)
            else:
                closed = True  # on the request's own event loop
                result = _whole(router, request)
        except NoCandidateError as error:
            return fail(str(error), 1)
        except AllAttemptsFailedError as error:
            print("error: every candidate failed:", file=sys.stderr)
            for n, a in enumerate(error.attempts, 1):
                print(f"  {n}. {a.error} (after {a.latency_ms} ms)", file=sys.stderr)
            return 1
        except StreamInterruptedError as error:
            print(file=sys.stderr)
            return fail(str(error), 1)
    finally:
        if closed:
            router.catalog.close()
        else:
            close(router)
    if args.verbose:
        print_attempts(result)
    if args.format == "json":
        emit_json(_as_json(result))
    elif not stream and (result.text or not result.tool_calls):
        print(result.text)
    if result.tool_calls and args.format == "text":
        emit_json(_calls(result))
    return 0


def _whole(router: Router, request: GenerateRequest) -> GenerateResult:
    """The request, then the router closed, on one event loop: the router's own HTTP client
    serves it (`run_sync` would make a second one, and its TLS set-up costs ~50 ms of CPU)."""
    import anyio

    async def once() -> GenerateResult:
        try:
            return await router.generate(request)
        finally:
            await router.aclose()

    return anyio.run(once)


def _stream_out(router: Router, request: GenerateRequest) -> GenerateResult:
    """Print text as it arrives; the result is the stream's last item."""
    from freegin_ai.adapters.router import GenerateResult
    from freegin_ai.domain.chat import TextDelta

    result: GenerateResult | None = None
    wrote = False
    for item in router.stream_sync(request):
        if isinstance(item, TextDelta):
            sys.stdout.write(item.text)
            sys.stdout.flush()
            wrote = True
        elif isinstance(item, GenerateResult):
            result = item
    if wrote:
        sys.stdout.write("\n")
        sys.stdout.flush()
    assert result is not None
    return result


def _calls(result: GenerateResult) -> list[Any]:
    from freegin_ai.domain.chat import to_openai

    return [to_openai(call) for call in result.tool_calls]


def _as_json(result: GenerateResult) -> dict[str, Any]:
    return {
        "text": result.text,
        "tool_calls": _calls(result),
        "finish_reason": result.finish_reason,
        "provider": result.provider,
        "model": result.model,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.total_tokens,
        "cached_tokens": result.cached_tokens,
        "reasoning_tokens": result.reasoning_tokens,
        "cost_micros": result.cost_micros,
        "attempts": result.attempts,
    }


def print_decision(decision: Any) -> None:
    print(f"routing: {decision.mode}, workload {decision.workload.value}", file=sys.stderr)
    for i, c in enumerate(decision.candidates, 1):
        extra = f", {c.consecutive_failures} recent failures" if c.consecutive_failures else ""
        print(f"  {i}. {c.provider}/{c.model} (priority {c.priority}{extra})", file=sys.stderr)
    for s in decision.skipped:
        print(f"  skipped {s.provider}/{s.model}: {s.reason}", file=sys.stderr)


def print_attempts(result: Any) -> None:
    for a in result.attempts:
        state = "ok" if a.success else f"failed ({a.error_kind}): {a.error}"
        print(f"attempt {a.provider}/{a.model}: {state} in {a.latency_ms} ms", file=sys.stderr)


def close(router: Router) -> None:
    import anyio

    anyio.run(router.aclose)
    router.catalog.close()


# --- chat -------------------------------------------------------------------------------


def chat(args: argparse.Namespace) -> int:
    from freegin_ai.adapters.router import (
        AllAttemptsFailedError,
        GenerateResult,
        NoCandidateError,
        Router,
        StreamInterruptedError,
    )
    from freegin_ai.domain.chat import AssistantMessage, TextDelta

    try:
        build_request(args, (), "check")  # bad options or files: exit 2 before anything runs
    except ValueError as error:
        return fail(str(error))
    router = Router.open(os.environ)
    startup.settle()  # a conversation keeps running: the collector as usual (ADR 0023)
    history: list[Message] = []
    last: GenerateResult | None = None
    interactive = sys.stdin.isatty()
    try:
        while True:
            try:
                line = input("you> " if interactive else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/reset":
                history.clear()
                print("(conversation cleared)", file=sys.stderr)
                continue
            if text == "/route":
                if last is None:
                    print("(no answer yet)", file=sys.stderr)
                else:
                    print_decision(last.decision)
                    print_attempts(last)
                continue
            request = build_request(args, tuple(history), line)
            pieces: list[str] = []
            try:
                for item in router.stream_sync(request):
                    if isinstance(item, TextDelta):
                        pieces.append(item.text)
                        sys.stdout.write(item.text)
                        sys.stdout.flush()
                    elif isinstance(item, GenerateResult):
                        last = item
            except KeyboardInterrupt:
                print("\n(answer stopped)", file=sys.stderr)
                continue
            except (NoCandidateError, AllAttemptsFailedError, StreamInterruptedError) as error:
                print(f"\nerror: {error}", file=sys.stderr)
                if isinstance(error, AllAttemptsFailedError):
                    for a in error.attempts:
                        print(f"  {a.error}", file=sys.stderr)
                continue
            sys.stdout.write("\n")
            sys.stdout.flush()
            history.append(request.messages[-1])
            assert last is not None
            if last.tool_calls:  # the chat cannot run tools: show the calls, keep the text
                emit_json(_calls(last))
            history.append(AssistantMessage(content="".join(pieces)))
            if args.verbose:
                print_decision(last.decision)
                print_attempts(last)
    finally:
        close(router)
    if interactive:
        print(file=sys.stderr)
    return 0
