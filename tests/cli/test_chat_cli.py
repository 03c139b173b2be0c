"""`generate` with conversations, tools, JSON and streaming, and the interactive `chat`, through
the real console script against a fake provider on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_router_cli import SCRIPT, groq_env, run
from tests.fakes.provider_server import FakeProviderServer, Reply, StreamStall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up",
            "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(max_stall_seconds=3.0) as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    run(tmp_path, "adopt-model", "groq", "g-1", "--priority", "1")
    return tmp_path


def write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def usage_count(data: Path, fake: FakeProviderServer) -> int:
    result = run(data, "stats", "--provider", "groq", "--json", extra=groq_env(fake))
    calls: int = json.loads(result.stdout)["total"]["calls"]
    return calls


def test_messages_file_and_tools_print_the_tool_calls_as_json(
    data: Path, fake: FakeProviderServer
) -> None:
    fake.script("g-1", Reply(text="", tool_calls=(("lookup", {"word": "sesquipedalian"}),)))
    messages = write(
        data / "messages.json",
        [
            {"role": "system", "content": "Use the dictionary."},
            {"role": "user", "content": "What does sesquipedalian mean?"},
        ],
    )
    result = run(
        data,
        "generate",
        "--messages-file",
        str(messages),
        "--tools",
        str(write(data / "tools.json", TOOLS)),
        extra=groq_env(fake),
    )
    assert result.returncode == 0, result.stderr
    [call] = json.loads(result.stdout)
    assert call["type"] == "function" and call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"word": "sesquipedalian"}
    body = fake.last_request().body
    assert body["messages"][0] == {"role": "system", "content": "Use the dictionary."}
    assert body["tools"] == TOOLS
    assert body["stream"] is False  # stdout is not a terminal: no stream by default


def test_stream_prints_text_as_it_arrives(data: Path, fake: FakeProviderServer) -> None:
    fake.chunk_chars = 2
    fake.script("g-1", Reply("streamed – answer ✓"))
    result = run(
        data, "generate", "--prompt", "hi", "--stream", "--system", "be brief", extra=groq_env(fake)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "streamed – answer ✓\n"
    body = fake.last_request().body
    assert body["stream"] is True and body["messages"][0]["content"] == "be brief"


@pytest.mark.parametrize(
    ("configured", "client"),
    [(None, "python-httpx/"), ("aiohttp", "aiohttp/"), ("httpcore", "python-httpx/")],
)
def test_a_one_shot_generate_calls_on_httpx_own_pool_unless_config_names_another(
    data: Path, fake: FakeProviderServer, configured: str | None, client: str
) -> None:
    # "auto" (the default) spares a one-shot command importing aiohttp (ADR 0022); a transport
    # named in config.toml is the one used.
    if configured is not None:
        (data / "config").mkdir(exist_ok=True)
        (data / "config" / "config.toml").write_text(f'[router]\nhttp_transport = "{configured}"\n')
    for stream in ("--no-stream", "--stream"):
        fake.script("g-1", Reply("ok"))
        result = run(data, "generate", "--prompt", "hi", stream, extra=groq_env(fake))
        assert result.returncode == 0, result.stderr
        assert client in fake.last_request().headers["user-agent"]


def test_chat_runs_on_aiohttp_pool_by_default(data: Path, fake: FakeProviderServer) -> None:
    fake.script("g-1", Reply("Hello."))
    result = run(data, "chat", stdin="Hi.\n", extra=groq_env(fake))
    assert result.returncode == 0, result.stderr
    assert "aiohttp/" in fake.last_request().headers["user-agent"]


def test_json_schema_file_and_json_output(data: Path, fake: FakeProviderServer) -> None:
    fake.script("g-1", Reply('{"word": "hi"}'))
    schema = {"title": "Word", "type": "object", "properties": {"word": {"type": "string"}}}
    result = run(
        data,
        "generate",
        "--prompt",
        "one word",
        "--json-schema",
        str(write(data / "schema.json", schema)),
        "--format",
        "json",
        extra=groq_env(fake),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["text"], out["finish_reason"], out["tool_calls"]) == ('{"word": "hi"}', "stop", [])
    assert fake.last_request().body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Word", "schema": schema, "strict": True},
    }
    result = run(data, "generate", "--prompt", "x", "--json", extra=groq_env(fake))
    assert fake.last_request().body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        ("--messages-file", "[{", "messages: not valid JSON"),
        ("--messages-file", '[{"role": "robot", "content": "x"}]', "Invalid value 'robot'"),
        ("--tools", '[{"type": "function", "function": {}}]', "tools: Object missing"),
        ("--json-schema", "[1, 2]", "schema: Expected `object`"),
        ("--json-schema", "{}", "needs a schema object"),
        ("--messages-file", None, "cannot read messages file"),
    ],
)  # fmt: skip
def test_bad_files_fail_with_one_line_exit_2_and_nothing_sent_or_logged(
    data: Path, fake: FakeProviderServer, flag: str, content: str | None, message: str
) -> None:
    path = data / "input.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = run(data, "generate", "--prompt", "p", flag, str(path), extra=groq_env(fake))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert fake.requests == []
    assert usage_count(data, fake) == 0


def test_chat_keeps_the_conversation_and_shows_the_route_on_request(
    data: Path, fake: FakeProviderServer
) -> None:
    fake.script("g-1", Reply("Hello Ada."), Reply("You are Ada."))
    result = run(
        data, "chat", stdin="I am Ada.\n/route\nWho am I?\n", extra=groq_env(fake)
    )  # Ctrl-D after the last line
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Hello Ada.", "You are Ada."]
    assert "routing: catalog" in result.stderr and "attempt groq/g-1: ok" in result.stderr
    second = fake.last_request().body["messages"]
    assert [(m["role"], m["content"]) for m in second] == [
        ("user", "I am Ada."),
        ("assistant", "Hello Ada."),
        ("user", "Who am I?"),
    ]
    assert all(r.body["stream"] is True for r in fake.requests)
    assert usage_count(data, fake) == 2
    # stats shows time to first token next to latency for streamed answers.
    stats = run(data, "stats", "--provider", "groq", extra=groq_env(fake))
    assert "TTFT50" in stats.stdout and "TTFT95" in stats.stdout
    record = json.loads(run(data, "stats", "--provider", "groq", "--json").stdout)["total"]
    assert record["streamed_calls"] == 2 and record["p50_ttft_ms"] is not None


def test_chat_stops_cleanly_on_ctrl_c(data: Path, fake: FakeProviderServer) -> None:
    fake.script("g-1", StreamStall(after=2, seconds=3.0, then=Reply("a slow answer")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEGIN_")}
    env |= {"FREEGIN_DATA_DIR": str(data), "FREEGIN_CONFIG_DIR": str(data / "config")}
    env |= groq_env(fake)
    process = subprocess.Popen(
        [str(SCRIPT), "chat"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write("hello\n")
    process.stdin.flush()
    deadline = time.monotonic() + 20
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the answer is streaming, stalled
    process.send_signal(signal.SIGINT)  # stops the answer
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)  # at the prompt: leaves
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "(answer stopped)" in err
    assert usage_count(data, fake) == 1  # the stopped answer was still logged
