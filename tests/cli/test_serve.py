"""`freegin-ai serve` in a subprocess, driven with the official `openai` SDK, in front of fake
providers on 127.0.0.1.

Most tests share one gateway (and one fake provider) and keep out of each other's way by
using their own model names or workloads; tests that need their own settings (a key, a
signal) start their own.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.gateway import SCRIPT, ServeProcess, clean_env
from tests.fakes.provider_server import (
    FakeProviderServer,
    RateLimited,
    Reply,
    ServerError,
    Stall,
    StreamCut,
    StreamStall,
    Unauthorized,
)

GROQ_KEY = "gsk-gateway-SECRET-1234567890"
DEEPSEEK_KEY = "sk-deepseek-gateway-SECRET-0987654321"
SERVE_KEY = "fg-serve-SECRET-key-42"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(max_stall_seconds=10) as server:
        yield server


def provider_env(fake: FakeProviderServer) -> dict[str, str]:
    return {
        "FREEGIN_GROQ_BASE_URL": fake.openai_url,
        "GROQ_API_KEY": GROQ_KEY,
        "FREEGIN_DEEPSEEK_BASE_URL": fake.openai_url,
        "DEEPSEEK_API_KEY": DEEPSEEK_KEY,
    }


def write_config(data: Path, text: str) -> None:
    (data / "config").mkdir(parents=True, exist_ok=True)
    (data / "config" / "config.toml").write_text(text)


@pytest.fixture(scope="module")
def gateway(
    fake: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    data = tmp_path_factory.mktemp("gateway")
    # One second per provider call, so a stalled provider times out quickly.
    write_config(data, "[router]\ntimeout_seconds = 1\n")
    with ServeProcess(
        data, provider_env(fake), "--access-log", "--max-body-bytes", "100000"
    ) as server:
        yield server


_clients: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every SDK client a test made: a client left to the garbage collector may warn
    about its socket in whichever test runs next."""
    yield
    while _clients:
        _clients.pop().close()


def sdk(server: ServeProcess, api_key: str = "anything") -> openai.OpenAI:
    client = openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, timeout=30)
    _clients.append(client)
    return client


def adopt(server: ServeProcess, provider: str, model: str, workload: str, priority: int) -> None:
    result = server.cli(
        "adopt-model", provider, model, "--workload", workload, "--priority", str(priority)
    )
    assert result.returncode == 0, result.stderr


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# -- completions -------------------------------------------------------------------------------


def test_a_workload_name_routes_through_the_catalog_and_the_headers_name_the_route(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    # Given a model adopted for `creative` while the gateway runs
    adopt(gateway, "groq", "cr-1", "creative", 1)
    fake.script("cr-1", Reply("once upon a time", prompt_tokens=11, completion_tokens=4))
    # When a client asks for the workload
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="creative",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a story"}]},
        ],
        max_tokens=50,
        temperature=0.5,
    )
    answer = raw.parse()
    # Then the SDK parses an answer from the catalog's first model
    assert answer.choices[0].message.content == "once upon a time"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    assert answer.model == "groq/cr-1"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 4)
    assert answer.usage.total_tokens == 15
    # and the headers name the provider, the model and the attempts
    assert raw.headers["x-freegin-provider"] == "groq"
    assert raw.headers["x-freegin-model"] == "cr-1"
    assert raw.headers["x-freegin-attempts"] == "1"
    # and the provider got the system prompt, the text and the parameters
    sent = fake.last_request().body
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a story"},
    ]
    assert (sent["max_tokens"], sent["temperature"]) == (50, 0.5)


def test_adopting_and_retiring_with_the_cli_apply_on_the_next_request(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    cli_changes_apply_on_the_next_request(gateway, fake, "sum")


def cli_changes_apply_on_the_next_request(
    server: ServeProcess, fake: FakeProviderServer, prefix: str
) -> None:
    client = sdk(server)
    first, second = f"{prefix}-1", f"{prefix}-2"
    fake.script(first, Reply(f"from {first}"))
    fake.script(second, Reply(f"from {second}"))
    adopt(server, "groq", first, "summarization", 1)

    def ask() -> ChatCompletion:
        return client.chat.completions.create(model="summarization", messages=user("x"))

    assert ask().choices[0].message.content == f"from {first}"
    # A better model adopted while the gateway runs is used at once
    adopt(server, "deepseek", second, "summarization", 0)
    assert ask().choices[0].message.content == f"from {second}"
    assert f"deepseek/{second}" in {m.id for m in client.models.list()}
    # and once retired, it is dropped at once
    retired = server.cli("retire-model", "deepseek", second, "--workload", "summarization")
    assert retired.returncode == 0, retired.stderr
    assert ask().choices[0].message.content == f"from {first}"
    assert f"deepseek/{second}" not in {m.id for m in client.models.list()}


def test_models_lists_workload_aliases_and_active_roster_models(gateway: ServeProcess) -> None:
    adopt(gateway, "groq", "listed-1", "extraction", 5)
    ids = [m.id for m in sdk(gateway).models.list()]
    assert ids[:7] == [
        "chat", "code", "summarization", "extraction", "creative", "classification", "auto"
    ]  # fmt: skip
    assert "groq/listed-1" in ids
    assert "groq/openai/gpt-oss-120b" in ids  # a seeded default
    one = sdk(gateway).models.retrieve("groq/listed-1")
    assert one.owned_by == "groq"
    with pytest.raises(openai.NotFoundError):
        sdk(gateway).models.retrieve("groq/never-adopted")


def test_stream_chunks_parse_and_end_with_usage(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    fake.script("st-1", Reply("streamed answer", prompt_tokens=6, completion_tokens=2))
    stream = sdk(gateway).chat.completions.create(
        model="groq/st-1",
        messages=user("go"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed answer"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 6
    # Streams feed the time-to-first-token histogram
    text = httpx.get(f"{gateway.url}/metrics").text
    route = {"provider": "groq", "model": "st-1", "workload": "chat"}
    assert sample(text, "freegin_time_to_first_token_seconds_count", **route) == 1


def test_a_stream_falls_back_before_its_first_token_and_names_who_answered(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    fake.script("sfb-1", ServerError())
    adopt(gateway, "deepseek", "sfb-2", "summarization", 0)
    fake.script("sfb-2", Reply("the fallback streams"))
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="groq/sfb-1",
        messages=user("x"),
        stream=True,
        extra_body={"fallback": True},
        extra_headers={"x-freegin-workload": "summarization"},
    )
    assert (raw.headers["x-freegin-provider"], raw.headers["x-freegin-model"]) == (
        "deepseek",
        "sfb-2",
    )
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "the fallback streams"
    )
    assert chunks[0].model == "deepseek/sfb-2"
    retired = gateway.cli("retire-model", "deepseek", "sfb-2", "--workload", "summarization")
    assert retired.returncode == 0, retired.stderr


def test_a_provider_failing_mid_stream_ends_it_with_an_error_event(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    fake.script("cut-1", StreamCut(after=3, then=Reply("a long answer that breaks")))
    stream = sdk(gateway).chat.completions.create(
        model="groq/cut-1", messages=user("x"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for c in stream:
            received.append(c.choices[0].delta.content or "" if c.choices else "")
    assert "stopped part-way" in str(caught.value.message)
    assert "".join(received) and "a long answer that breaks".startswith("".join(received))


def test_tools_round_trip_whole_and_streamed(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    tools: list[Any] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    fake.script(
        "tool-1",
        Reply("", tool_calls=(("get_weather", {"city": "Paris"}),)),
        Reply("", tool_calls=(("get_weather", {"city": "Paris"}),)),
        Reply("It is sunny in Paris"),
    )
    # The model calls the tool
    answer = client.chat.completions.create(
        model="groq/tool-1", messages=user("Weather in Paris?"), tools=tools
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert fake.last_request().body["tools"][0]["function"]["name"] == "get_weather"
    # The same call, streamed: the fragments assemble into the call
    stream = client.chat.completions.create(
        model="groq/tool-1", messages=user("Weather in Paris?"), tools=tools, stream=True
    )
    names, arguments, finish = [], [], []
    for c in stream:
        for delta in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            names.append(delta.function.name or "" if delta.function else "")
            arguments.append(delta.function.arguments or "" if delta.function else "")
        finish += [c.choices[0].finish_reason] if c.choices else []
    assert "".join(names) == "get_weather"
    assert json.loads("".join(arguments)) == {"city": "Paris"}
    assert finish[-1] == "tool_calls"
    # The tool's result goes back, and the model answers
    answer = client.chat.completions.create(
        model="groq/tool-1",
        tools=tools,
        messages=[
            *user("Weather in Paris?"),
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear"}'},
        ],
    )
    assert answer.choices[0].message.content == "It is sunny in Paris"
    sent = fake.last_request().body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear"}'}


def test_json_mode_and_json_schema_reach_the_provider(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    fake.script("json-1", Reply('{"answer": 42}'))
    answer = client.chat.completions.create(
        model="groq/json-1", messages=user("JSON please"), response_format={"type": "json_object"}
    )
    assert json.loads(answer.choices[0].message.content or "") == {"answer": 42}
    assert fake.last_request().body["response_format"] == {"type": "json_object"}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    client.chat.completions.create(
        model="groq/json-1",
        messages=user("JSON please"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    sent = fake.last_request().body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == schema


def test_a_client_leaving_mid_stream_stops_the_call_and_its_usage_is_still_logged(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    fake.script("gone-1", StreamStall(after=3, seconds=8, then=Reply("a slow and long answer")))
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json={"model": "groq/gone-1", "messages": user("x"), "stream": True},
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if '"content":"a' in line.replace(" ", ""):
                break  # the first words arrived: hang up
    # The gateway logs the cancelled attempt (flushed within about a second)
    deadline = time.monotonic() + 20
    while True:
        stats = gateway.cli("stats", "--provider", "groq", "--model", "gone-1", "--json")
        if '"calls": 1' in stats.stdout:
            break
        assert time.monotonic() < deadline, stats.stdout + stats.stderr
        time.sleep(0.5)
    assert time.monotonic() - started < 8  # not after the provider's stall ended


def test_provider_slash_model_pins_and_a_bare_model_goes_to_whoever_serves_it(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    fake.script("pin-1", Reply("pinned"))
    raw = client.chat.completions.with_raw_response.create(model="groq/pin-1", messages=user("x"))
    assert raw.parse().choices[0].message.content == "pinned"
    assert raw.headers["x-freegin-provider"] == "groq"
    # A bare id served by one provider's roster goes there (whatever the workload's order)
    adopt(gateway, "deepseek", "bare-1", "extraction", 90)
    fake.script("bare-1", Reply("bare"))
    raw = client.chat.completions.with_raw_response.create(
        model="bare-1", messages=user("x"), extra_headers={"x-freegin-workload": "extraction"}
    )
    assert raw.parse().choices[0].message.content == "bare"
    assert raw.headers["x-freegin-provider"] == "deepseek"
    # Anything else is a 404 naming the model
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=user("x"))
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


def test_auto_takes_the_workload_header(gateway: ServeProcess, fake: FakeProviderServer) -> None:
    adopt(gateway, "groq", "code-1", "code", 0)
    fake.script("code-1", Reply("def f(): pass"))
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=user("write f"), extra_headers={"x-freegin-workload": "coding"}
    )
    assert raw.headers["x-freegin-model"] == "code-1"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway).chat.completions.create(
            model="auto", messages=user("x"), extra_headers={"x-freegin-workload": "poetry"}
        )
    assert caught.value.param == "x-freegin-workload"
    # x-freegin-wait (seconds to wait for a model out of quota or cooling down) is checked
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="code", messages=user("x"), extra_headers={"x-freegin-wait": "2.5"}
    )
    assert raw.headers["x-freegin-model"] == "code-1"
    for bad in ("soon", "-1", "inf"):
        with pytest.raises(openai.BadRequestError) as caught:
            sdk(gateway).chat.completions.create(
                model="code", messages=user("x"), extra_headers={"x-freegin-wait": bad}
            )
        assert caught.value.param == "x-freegin-wait"


def test_a_pin_is_a_hard_choice_unless_the_request_asks_for_fallback(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    fake.script("hard-1", ServerError())
    adopt(gateway, "deepseek", "soft-1", "creative", 0)
    fake.script("soft-1", Reply("from the catalog"))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="groq/hard-1", messages=user("x"))
    assert caught.value.status_code == 502
    raw = client.chat.completions.with_raw_response.create(
        model="groq/hard-1",
        messages=user("x"),
        extra_body={"fallback": True},
        extra_headers={"x-freegin-workload": "creative"},
    )
    assert raw.parse().choices[0].message.content == "from the catalog"
    assert raw.headers["x-freegin-attempts"] == "2"
    assert raw.headers["x-freegin-tried"] == "groq/hard-1 server, deepseek/soft-1 ok"


def test_the_request_key_keeps_a_request_on_its_trial_arm(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    # Given half of `chat` on trial for tri-1, the seeded default being the incumbent
    trial = gateway.cli("trial-model", "groq", "tri-1", "--workload", "chat", "--percent", "50")
    assert trial.returncode == 0, trial.stderr
    fake.script("tri-1", Reply("trial"))
    fake.script("openai/gpt-oss-120b", Reply("incumbent"))
    client = sdk(gateway)

    def arm(key: str) -> str:
        answer = client.chat.completions.create(
            model="chat", messages=user("x"), extra_headers={"x-freegin-request-key": key}
        )
        return answer.choices[0].message.content or ""

    arms = {key: arm(key) for key in (f"key-{n}" for n in range(16))}
    # Then each key lands on the same arm again, and both arms are used
    assert all(arm(key) == chosen for key, chosen in arms.items())
    assert set(arms.values()) == {"trial", "incumbent"}
    ended = gateway.cli("end-trial", "groq", "tri-1", "--workload", "chat", "--reject")
    assert ended.returncode == 0, ended.stderr


# -- errors ----------------------------------------------------------------------------------


def test_bad_parameters_are_400s_that_name_the_parameter(gateway: ServeProcess) -> None:
    client = sdk(gateway)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"temperature": 5}, "temperature"),
        ({"extra_body": {"max_tokens": "many"}}, "max_tokens"),
        ({"n": 3}, "n"),
        ({"extra_body": {"messages": [{"content": "no role"}]}}, "messages[0].role"),
        ({"extra_body": {"messages": []}}, "messages"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}] * 2}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"extra_body": {"response_format": {"type": "yaml"}}}, "response_format.type"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="chat", messages=user("x"), **extra)
        assert caught.value.param == param, extra
        assert caught.value.type == "invalid_request_error"


def test_impossible_model_names_are_client_errors_never_500(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    before = len(fake.requests)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="two words", messages=user("x"))
    # A pin to a name no model can have is the caller's fault (ADR 0009): nothing is sent.
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="groq/line\nbreak", messages=user("x"))
    assert "model name" in caught.value.message
    assert len(fake.requests) == before


def test_malformed_or_oversized_bodies_get_400_and_413_never_500(gateway: ServeProcess) -> None:
    url = f"{gateway.base_url}/chat/completions"
    for body in (b"{not json", b"[1, 2]", b"", b"\xff\xfe", b'{"model": "chat"}'):
        reply = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 400, body
        assert set(reply.json()["error"]) >= {"message", "type", "param", "code"}
    big = b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 200_000
    reply = httpx.post(url, content=big + b'"}]}')
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_too_large"
    assert httpx.get(url).status_code == 405
    assert httpx.get(f"{gateway.url}/v2/nothing").status_code == 404


def test_every_candidate_rate_limited_is_a_429_with_retry_after(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    fake.script("rl-1", RateLimited(retry_after="20"))
    # The pinned model answers 429: the client gets 429 and when to come back (the model's
    # cooldown: never sooner than the provider said)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="groq/rl-1", messages=user("x"))
    assert 18 <= int(caught.value.response.headers["retry-after"]) <= 30
    body = caught.value.body
    assert isinstance(body, dict)
    assert [a["error_kind"] for a in body["attempts"]] == ["rate_limited"]
    # Through a workload whose two usable models (Groq's and DeepSeek's default) answer 429:
    # 429 when both were tried, and 429 again while both cool down
    adopt(gateway, "groq", "rl-2", "classification", 0)
    fake.script("rl-2", RateLimited(retry_after="30"))
    fake.script("deepseek-flash", RateLimited(retry_after="25"))
    workload = {"x-freegin-workload": "classification"}
    for listed in ("attempts", "skipped"):  # tried once, then skipped while cooling down
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="auto", messages=user("x"), extra_headers=workload)
        assert 1 <= int(caught.value.response.headers["retry-after"]) <= 30
        body = caught.value.body
        assert isinstance(body, dict)
        assert {(e["provider"], e["model"]) for e in body[listed]} >= {
            ("groq", "rl-2"),
            ("deepseek", "deepseek-flash"),
        }


def test_every_attempt_failed_is_a_502_listing_each_and_timeouts_a_504(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    fake.script("bad-1", ServerError(503, "upstream down"))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="groq/bad-1", messages=user("x"))
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "all_attempts_failed"
    assert [(a["provider"], a["model"], a["error_kind"]) for a in body["attempts"]] == [
        ("groq", "bad-1", "server")
    ]
    fake.script("slow-1", Stall(5))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as timed_out:
        client.chat.completions.create(model="groq/slow-1", messages=user("x"))
    assert timed_out.value.status_code == 504
    assert time.monotonic() - started < 4


def test_no_usable_candidate_is_a_503_saying_why(gateway: ServeProcess) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(gateway).chat.completions.create(model="mistral/m-1", messages=user("x"))
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict)
    assert "no API key" in body["skipped"][0]["reason"]


# -- security --------------------------------------------------------------------------------


def test_provider_keys_never_reach_a_response_a_header_the_log_or_the_metrics(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    fake.script("leak-1", Unauthorized(f"Invalid API key {GROQ_KEY} / {DEEPSEEK_KEY}"))
    reply = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "groq/leak-1", "messages": user("x")},
    )
    assert reply.status_code == 502
    assert "[redacted]" in reply.text
    metrics = httpx.get(f"{gateway.url}/metrics").text
    for key in (GROQ_KEY, DEEPSEEK_KEY):
        assert key not in reply.text
        assert key not in str(reply.headers)
        assert key not in metrics
        assert key not in gateway.output


def test_with_a_key_every_endpoint_but_healthz_needs_the_bearer(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.script("auth-1", Reply("authorized"))
    env = provider_env(fake) | {"FREEGIN_SERVE_API_KEY": SERVE_KEY}
    with ServeProcess(tmp_path, env) as server:
        for wrong in ("anything", SERVE_KEY + "x", SERVE_KEY[:-1]):
            with pytest.raises(openai.AuthenticationError):
                sdk(server, wrong).chat.completions.create(model="groq/auth-1", messages=user("x"))
            with pytest.raises(openai.AuthenticationError):
                sdk(server, wrong).models.list()
        answer = sdk(server, SERVE_KEY).chat.completions.create(
            model="groq/auth-1", messages=user("x")
        )
        assert answer.choices[0].message.content == "authorized"
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        bearer = {"authorization": f"Bearer {SERVE_KEY}"}
        assert httpx.get(f"{server.url}/metrics", headers=bearer).status_code == 200
    assert SERVE_KEY not in server.output


def test_a_key_file_works_and_no_key_means_loopback_only(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "serve.key"
    key_file.write_text(SERVE_KEY + "\n")
    fake.script("file-1", Reply("via key file"))
    with ServeProcess(tmp_path, provider_env(fake), "--api-key-file", str(key_file)) as server:
        answer = sdk(server, SERVE_KEY).chat.completions.create(
            model="groq/file-1", messages=user("x")
        )
        assert answer.choices[0].message.content == "via key file"
    env = clean_env(tmp_path)
    for host in ("0.0.0.0", "::"):
        refused = subprocess.run(
            [str(SCRIPT), "serve", "--host", host, "--port", "0"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 2
        assert refused.stderr.startswith("error: refusing to listen on")
        assert len(refused.stderr.splitlines()) == 1
    (tmp_path / "empty.key").write_text("\n")
    empty = subprocess.run(
        [str(SCRIPT), "serve", "--port", "0", "--api-key-file", str(tmp_path / "empty.key")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert empty.returncode == 2 and "is empty" in empty.stderr


# -- operations ------------------------------------------------------------------------------


def test_metrics_count_requests_tokens_attempts_and_models_cooling_down(
    gateway: ServeProcess, fake: FakeProviderServer
) -> None:
    client = sdk(gateway)
    fake.script("met-1", Reply("m", prompt_tokens=13, completion_tokens=7))
    fake.script("met-bad", ServerError())
    # A model that fails has a label of its own when the roster knows it (one that answered
    # has one anyway); the gateway reads the roster for labels at most once a second.
    adopt(gateway, "groq", "met-bad", "classification", 90)
    time.sleep(1.1)
    client.chat.completions.create(model="groq/met-1", messages=user("x"))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="groq/met-bad", messages=user("x"))
    text = httpx.get(f"{gateway.url}/metrics").text
    ok = {"provider": "groq", "model": "met-1", "workload": "chat"}
    bad = {"provider": "groq", "model": "met-bad", "workload": "chat"}
    assert sample(text, "freegin_requests_total", **ok, outcome="ok") == 1
    assert sample(text, "freegin_tokens_total", **ok, kind="prompt") == 13
    assert sample(text, "freegin_tokens_total", **ok, kind="completion") == 7
    assert sample(text, "freegin_request_duration_seconds_count", **ok) == 1
    assert sample(text, "freegin_attempts_total", **bad, outcome="server") == 1
    assert sample(text, "freegin_requests_total", **bad, outcome="all_attempts_failed") == 1
    cooling = {"provider": "groq", "model": "met-bad", "kind": "server"}
    assert sample(text, "freegin_model_cooling_down", **cooling) == 1
    assert sample(text, "freegin_http_requests_total", path="chat", status="502") >= 1


def test_made_up_model_names_cannot_grow_the_number_of_metric_series(
    gateway: ServeProcess,
) -> None:
    def labelled(text: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
        return {
            (s.name, frozenset(s.labels.items()))
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if "model" in s.labels
        }

    before = labelled(httpx.get(f"{gateway.url}/metrics").text)
    # Given a client sending 120 model names nobody serves: pinned to a provider that answers
    # 404 (failed attempts, models marked gone), pinned to one without a key, or bare
    with httpx.Client(base_url=gateway.base_url, timeout=30) as client:
        for n in range(40):
            for model in (f"groq/made-up-{n}", f"mistral/made-up-{n}", f"made-up-{n}"):
                reply = client.post(
                    "/chat/completions", json={"model": model, "messages": user("x")}
                )
                assert reply.status_code in (404, 502, 503), reply.text
    after = labelled(httpx.get(f"{gateway.url}/metrics").text)
    # Then no name reached a label and a handful of series appeared, not one per name
    assert not any("made-up" in value for _, labels in after for _, value in labels)
    assert len(after - before) <= 12, sorted(after - before)
    assert any(("model", "other") in labels for _, labels in after - before)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text exposition (fails when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels}")


def test_sigterm_lets_the_request_in_flight_finish_and_flushes_its_usage(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.script("sig-1", Stall(1.5, Reply("finished after SIGTERM")))
    with ServeProcess(tmp_path, provider_env(fake), "--grace-seconds", "10") as server:
        answers: list[str] = []

        def ask() -> None:
            answer = sdk(server).chat.completions.create(model="groq/sig-1", messages=user("x"))
            answers.append(answer.choices[0].message.content or "")

        asking = threading.Thread(target=ask)
        asking.start()
        # Once the provider has the request, the gateway is told to stop
        deadline = time.monotonic() + 20
        while not any(r.body and r.body.get("model") == "sig-1" for r in fake.requests):
            assert time.monotonic() < deadline, server.output
            time.sleep(0.02)
        server.signal(signal.SIGTERM)
        asking.join(30)
        assert answers == ["finished after SIGTERM"]
        assert server.wait() == 0, server.output
    assert "stopped" in server.output
    # The call was logged before the process exited
    stats = server.cli("stats", "--provider", "groq", "--model", "sig-1", "--json")
    assert stats.returncode == 0, stats.stderr
    assert '"calls": 1' in stats.stdout


def test_serve_help_names_the_options() -> None:
    result = subprocess.run(
        [str(SCRIPT), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for option in ("--host", "--port", "--api-key-file", "--grace-seconds", "--max-body-bytes"):
        assert option in result.stdout


@pytest.mark.postgres
def test_gateways_on_one_postgresql_database_share_cooldowns_and_statistics(
    fake: FakeProviderServer, tmp_path: Path, postgres_url: str
) -> None:
    env = provider_env(fake) | {"FREEGIN_DATABASE_URL": postgres_url}
    fake.script("pg-1", ServerError())
    fake.script("pg-2", Reply("from pg-2"))
    with (
        ServeProcess(tmp_path / "a", env) as first,
        ServeProcess(tmp_path / "b", env) as second,
    ):
        adopt(first, "groq", "pg-1", "code", 0)
        adopt(first, "groq", "pg-2", "code", 1)
        # The first gateway tries pg-1, which fails, then pg-2
        raw = sdk(first).chat.completions.with_raw_response.create(model="code", messages=user("x"))
        assert raw.headers["x-freegin-tried"] == "groq/pg-1 server, groq/pg-2 ok"
        # The second one knows pg-1 is cooling down and goes straight to pg-2
        raw = sdk(second).chat.completions.with_raw_response.create(
            model="code", messages=user("x")
        )
        assert raw.headers["x-freegin-tried"] == "groq/pg-2 ok"
        text = httpx.get(f"{second.url}/metrics").text
        cooling = {"provider": "groq", "model": "pg-1", "kind": "server"}
        assert sample(text, "freegin_model_cooling_down", **cooling) == 1
    # Both gateways' calls are in the shared statistics
    stats = first.cli("stats", "--provider", "groq", "--model", "pg-2", "--json")
    assert '"calls": 2' in stats.stdout, stats.stdout + stats.stderr


@pytest.mark.postgres
def test_on_postgresql_cli_changes_apply_on_the_next_request_too(
    fake: FakeProviderServer, tmp_path: Path, postgres_url: str
) -> None:
    # The gateway hears other processes' catalog appends through LISTEN/NOTIFY (ADR 0021).
    env = provider_env(fake) | {"FREEGIN_DATABASE_URL": postgres_url}
    with ServeProcess(tmp_path, env) as server:
        cli_changes_apply_on_the_next_request(server, fake, "pg-sum")


def test_sigterm_during_a_stream_lets_it_finish_and_logs_it(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    fake.script("sig-2", StreamStall(after=3, seconds=1.5, then=Reply("streamed through SIGTERM")))
    with ServeProcess(tmp_path, provider_env(fake), "--grace-seconds", "10") as server:
        stream = sdk(server).chat.completions.create(
            model="groq/sig-2", messages=user("x"), stream=True
        )
        text: list[str] = []
        for c in stream:
            if c.choices and c.choices[0].delta.content and not "".join(text):
                server.signal(signal.SIGTERM)  # the first words are here: stop the gateway
            text.append(c.choices[0].delta.content or "" if c.choices else "")
        assert "".join(text) == "streamed through SIGTERM"
        assert server.wait() == 0, server.output
    stats = server.cli("stats", "--provider", "groq", "--model", "sig-2", "--json")
    assert '"calls": 1' in stats.stdout, stats.stdout + stats.stderr
