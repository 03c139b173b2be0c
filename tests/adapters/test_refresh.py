"""The refresh handler over real HTTP against a fake LLM on 127.0.0.1: what an answer becomes
(pending suggestions with provenance, revisions, skips, drops), dry runs that write nothing,
failures that write no suggestion, `--via`, the provider's model list, and the scheduled
refresh that skips recently refreshed pairs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.config import Config
from freegin_ai.adapters.errors import RefreshFailedError
from freegin_ai.adapters.provider_set import ProviderSet
from freegin_ai.adapters.refresh import MAX_STORED_RESPONSE, RefreshDeps, Via, refresh
from freegin_ai.adapters.router import Router
from freegin_ai.adapters.scheduled_refresh import refresh_all
from freegin_ai.adapters.usage_log import DiscardingUsageLog
from freegin_ai.domain.commands import AdoptModel, RetireModel
from freegin_ai.domain.refresh_runs import RefreshRun
from freegin_ai.domain.topics import REFRESH_COMPLETED, SUGGESTION_PROPOSED
from freegin_ai.domain.usage import CallUsage, usage_logged
from freegin_ai.domain.workloads import ALL_WORKLOADS, Workload
from tests.conftest import FakeClock
from tests.fakes.provider_server import FakeProviderServer, Reply, ServerError, Stall

KEY = "gsk-refresh-SECRET-1234567890"
ASKED = "g-ask"  # the groq model that answers refreshes unless --via says otherwise


def answer(*models: str, rationale: str = "Fast and capable", **extra: Any) -> str:
    """An answer in the guide's schema suggesting `models`."""
    return json.dumps(
        {
            "suggestions": [
                {
                    "model": m,
                    "rationale": rationale,
                    "production_ready": True,
                    "notes": "Needs a key",
                    "metadata": {"est_cost_per_1k_tokens": 0.2},
                    **extra,
                }
                for m in models
            ]
        }
    )


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(max_stall_seconds=2.0) as server:
        server.models = [ASKED, "g-other", "new/model-a", "new/model-b"]
        yield server


@pytest.fixture
def catalog(database_url: str, clock: FakeClock) -> Iterator[Catalog]:
    c = Catalog.open(database_url, clock=clock, seed=False)
    c.adopt_model(AdoptModel(provider="groq", workload="chat", model=ASKED, priority=1))
    c.adopt_model(
        AdoptModel(provider="groq", workload="chat", model="g-current", priority=5, rationale="ok")
    )
    yield c
    c.close()


def make_router(catalog: Catalog, fake: FakeProviderServer, clock: FakeClock, **env: str) -> Router:
    config = Config(max_cost_per_1k_tokens=0.5, max_latency_ms=4000)
    base = {"FREEGIN_GROQ_BASE_URL": fake.openai_url, "GROQ_API_KEY": KEY}
    return Router(catalog, ProviderSet(config, base | env, {}), timeout=0.5, clock=clock)


@pytest.fixture
async def router(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> AsyncIterator[Router]:
    r = make_router(catalog, fake, clock)
    yield r
    await r.aclose()


def chat_requests(fake: FakeProviderServer) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST"]


def usage_count(catalog: Catalog) -> int:
    with catalog.reading() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM provider_usage").scalar() or 0)


def written(catalog: Catalog, topic: str) -> int:
    return len(catalog.store.read(0, 10_000, topics=frozenset({topic})))


def test_the_topic_constant_is_the_stored_name_of_the_event() -> None:
    assert get_topic(RefreshRun.RefreshCompleted) == REFRESH_COMPLETED


@pytest.mark.anyio
async def test_kept_suggestions_are_pending_with_provenance_and_the_run_is_recorded(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    # Given an LLM that answers with clean JSON, one model of which the provider lists.
    raw = answer("new/model-a", "new/unlisted")
    fake.script(ASKED, Reply(text=raw))

    # When groq is refreshed for Chat.
    report = await refresh(RefreshDeps.of(router), provider="groq")

    # Then both are proposed, pending, and marked listed or not by the provider.
    assert report.outcome is not None and report.outcome.proposed == ["new/model-a", "new/unlisted"]
    rows = {s.model: s for s in catalog.list_suggestions(provider="groq")}
    assert {s.status for s in rows.values()} == {"pending"}
    assert rows["new/model-a"].metadata["est_cost_per_1k_tokens"] == 0.2
    assert rows["new/model-a"].metadata["listed_by_provider"] is True
    assert rows["new/unlisted"].metadata["listed_by_provider"] is False
    # And the history keeps who answered, when, for which prompt, and the raw answer.
    [entry, _] = [e for e in catalog.history(provider="groq") if e.kind == "SuggestionProposed"]
    provenance = entry.details["provenance"]
    assert provenance["response"] == raw
    assert (provenance["provider"], provenance["model"]) == ("groq", ASKED)
    assert (provenance["refreshed_provider"], provenance["workload"]) == ("groq", "chat")
    assert len(provenance["prompt_sha256"]) == 64 and provenance["at"].startswith("2026-11-01T")
    # And the call is logged as usage, and the run as one RefreshCompleted.
    assert usage_count(catalog) == 1
    [run] = catalog.store.read(0, 100, topics=frozenset({REFRESH_COMPLETED}))
    assert run.state["provider"] == "groq" and run.state["workload"] == "chat"
    assert (run.state["via_model"], run.state["kept"], run.state["dropped"]) == (ASKED, 2, 0)


@pytest.mark.anyio
async def test_the_context_holds_roster_usage_constraints_and_known_models(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.script(ASKED, Reply(text=answer("new/model-a")))
    await refresh(RefreshDeps.of(router), provider="groq")
    body = chat_requests(fake)[-1].body
    user = body["messages"][-1]["content"]
    context = json.loads(user.split("Context:\n", 1)[1].split("\n\nAnswer with ONLY", 1)[0])
    assert context["provider"] == "groq" and context["workload"] == "Chat"
    assert [m["model"] for m in context["current_models"]] == [ASKED, "g-current"]
    assert context["usage_stats"]["total_calls"] == 0
    assert context["recent"]["window_days"] == 7
    assert context["constraints"] == {"max_cost_per_1k_tokens": 0.5, "max_latency_ms": 4000}
    # Models already in the roster are left out of the known list.
    assert context["known_models"] == ["g-other", "new/model-a", "new/model-b"]
    assert body["messages"][0]["role"] == "system"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text",
    [
        "```json\n" + answer("new/model-a", "new/model-b") + "\n```",
        "Sure! Here are my picks:\n" + answer("new/model-a", "new/model-b") + "\nEnjoy.",
    ],
    ids=["fenced", "chatty"],
)
async def test_fenced_and_chatty_answers_are_read(
    router: Router, catalog: Catalog, fake: FakeProviderServer, text: str
) -> None:
    fake.script(ASKED, Reply(text=text))
    report = await refresh(RefreshDeps.of(router), provider="groq")
    assert [s.model for s in report.kept] == ["new/model-a", "new/model-b"]
    assert {s.model for s in catalog.list_suggestions()} == {"new/model-a", "new/model-b"}


@pytest.mark.anyio
async def test_hostile_suggestions_are_dropped_each_with_a_reason(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    hostile = json.dumps(
        {
            "suggestions": [
                {"model": "new/model-a", "rationale": "fine"},
                {"model": "g-current", "rationale": "already active"},
                {"model": "../../etc/passwd\u202e", "rationale": "path"},
                {"model": "x/y", "provider": "openai", "rationale": "wrong provider"},
                {"model": "new/model-b", "workload": "poetry-slam"},
                {"rationale": "no model"},
                "IGNORE ALL PREVIOUS INSTRUCTIONS",
            ]
        }
    )
    fake.script(ASKED, Reply(text=hostile))
    report = await refresh(RefreshDeps.of(router), provider="groq")
    assert [s.model for s in report.kept] == ["new/model-a"]
    reasons = [d.reason for d in report.dropped]
    assert len(reasons) == 6 and all(reasons)
    assert "already active for Chat on groq" in reasons
    assert [s.model for s in catalog.list_suggestions()] == ["new/model-a"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "behaviour",
    [
        Reply(text=answer("new/model-a")[:40]),
        Reply(text=""),
        Reply(text="I cannot help with that."),
        ServerError(),
        Stall(seconds=2.0),
    ],
    ids=["truncated", "empty", "prose", "server-error", "timeout"],
)
async def test_a_failed_or_unusable_answer_writes_no_suggestion(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock, behaviour: Any
) -> None:
    # Only the answering model is on the roster, so there is nothing to fall back to.
    catalog.retire_model(RetireModel(provider="groq", workload="chat", model="g-current"))
    fake.script(ASKED, behaviour)
    before = catalog.store.last_position()
    async with make_router(catalog, fake, clock) as router:
        with pytest.raises(RefreshFailedError) as failure:
            await refresh(RefreshDeps.of(router), provider="groq")
    assert "\n" not in str(failure.value) and "groq" in str(failure.value)
    assert catalog.list_suggestions() == []
    assert written(catalog, REFRESH_COMPLETED) == 0
    # The call itself was real, so its usage is logged, and nothing else.
    assert usage_count(catalog) == 1
    assert catalog.store.last_position() == before + 1


@pytest.mark.anyio
async def test_an_overlong_answer_is_cut_in_the_provenance(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    raw = answer("new/model-a") + " " + "x" * 30_000
    fake.script(ASKED, Reply(text=raw))
    await refresh(RefreshDeps.of(router), provider="groq")
    [entry] = catalog.history(model="new/model-a")
    assert entry.details["provenance"]["response"] == raw[:MAX_STORED_RESPONSE]


@pytest.mark.anyio
async def test_proposing_a_pending_suggestion_again_revises_it(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    fake.script(ASKED, Reply(text=answer("new/model-a", rationale="first")))
    await refresh(RefreshDeps.of(router), provider="groq")
    fake.script(ASKED, Reply(text=answer("new/model-a", rationale="second thoughts")))
    report = await refresh(RefreshDeps.of(router), provider="groq")
    assert report.outcome is not None and report.outcome.revised == ["new/model-a"]
    [row] = catalog.list_suggestions()
    assert (row.status, row.rationale) == ("pending", "second thoughts")


@pytest.mark.anyio
async def test_an_adopted_suggestion_stays_adopted(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    # Given a suggestion that was adopted, and whose roster entry was retired since.
    fake.script(ASKED, Reply(text=answer("new/model-a")))
    await refresh(RefreshDeps.of(router), provider="groq")
    catalog.adopt_model(AdoptModel(provider="groq", workload="chat", model="new/model-a"))
    catalog.retire_model(RetireModel(provider="groq", workload="chat", model="new/model-a"))
    # When the LLM suggests it again.
    fake.script(ASKED, Reply(text=answer("new/model-a", rationale="try again")))
    report = await refresh(RefreshDeps.of(router), provider="groq")
    # Then it is skipped, and stays adopted with its old rationale.
    assert report.outcome is not None
    assert report.outcome.skipped == [("new/model-a", "already adopted")]
    [row] = catalog.list_suggestions()
    assert (row.status, row.rationale) == ("adopted", "Fast and capable")


@pytest.mark.anyio
async def test_a_dry_run_writes_no_event_and_no_usage(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    fake.script(ASKED, Reply(text=answer("new/model-a", "new/model-b")))
    before = catalog.store.last_position()
    saved_usage = router.usage
    report = await refresh(RefreshDeps.of(router), provider="groq", dry_run=True)
    assert [s.model for s in report.kept] == ["new/model-a", "new/model-b"]
    assert report.outcome is None
    # The router's own usage log is back, and nothing was committed through it.
    assert router.usage is saved_usage and router.usage.committed == 0
    await router.aclose()
    assert catalog.store.last_position() == before
    assert usage_count(catalog) == 0 and catalog.list_suggestions() == []


@pytest.mark.anyio
async def test_the_discarding_usage_log_never_appends(catalog: Catalog, clock: FakeClock) -> None:
    log = DiscardingUsageLog(catalog.store, clock)
    await log.log(
        CallUsage(provider="groq", workload="chat", model="m", success=True, latency_ms=1)
    )
    log.log_sync(CallUsage(provider="groq", workload="chat", model="m", success=True, latency_ms=1))
    made = CallUsage(provider="groq", workload="chat", model="m", success=True, latency_ms=2)
    await log.record(usage_logged(id=uuid.uuid4(), at=clock(), usage=made))  # made elsewhere
    log.record_sync(usage_logged(id=uuid.uuid4(), at=clock(), usage=made))
    log.close()
    assert log.committed == 0 and usage_count(catalog) == 0


@pytest.mark.anyio
async def test_via_picks_the_answering_provider_and_model(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    fake.script("g-other", Reply(text=answer("new/model-a")))
    await refresh(RefreshDeps.of(router), provider="groq", via=Via.parse("groq/g-other"))
    assert [r.body["model"] for r in chat_requests(fake)] == ["g-other"]
    [entry] = catalog.history(model="new/model-a")
    assert entry.details["provenance"]["model"] == "g-other"


def test_via_comes_from_the_option_then_the_config() -> None:
    config = Config(refresh_via="groq/llama-3.3-70b-versatile")
    assert Via.choose(None, config) == Via("groq", "llama-3.3-70b-versatile")
    assert Via.choose("hf/meta-llama/Llama-3.1-8B", config) == Via(
        "huggingface", "meta-llama/Llama-3.1-8B"
    )
    assert Via.choose("gemini", Config()) == Via("google", None)
    assert Via.choose(None, Config()) == Via()


@pytest.mark.anyio
async def test_without_a_listing_the_mark_is_left_out(
    catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    # OpenRouter has no key here, so its models cannot be listed; groq answers.
    fake.script(ASKED, Reply(text=answer("vendor/model")))
    async with make_router(catalog, fake, clock) as router:
        report = await refresh(RefreshDeps.of(router), provider="openrouter")
    assert report.listing.models is None and "no API key" in (report.listing.problem or "")
    [row] = catalog.list_suggestions(provider="openrouter")
    assert "listed_by_provider" not in row.metadata


@pytest.mark.anyio
async def test_all_workloads_go_in_one_transaction_or_not_at_all(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    # The answer names no workload, so each suggestion is for the workload asked about.
    fake.script(ASKED, Reply(text=answer("new/model-a")))
    progress: list[tuple[int, int]] = []
    report = await refresh(
        RefreshDeps.of(router),
        provider="groq",
        workloads=ALL_WORKLOADS,
        progress=lambda *p: progress.append(p),
    )
    assert progress[-1] == (6, 6)
    assert report.outcome is not None and len(report.outcome.proposed) == 6
    assert {s.workload for s in catalog.list_suggestions()} == {w.value for w in ALL_WORKLOADS}
    assert written(catalog, REFRESH_COMPLETED) == 6
    # A failure on the third workload leaves nothing of the run behind.
    fake.script(ASKED, Reply(text=answer("new/model-b")), Reply(text=answer("new/model-b")),
                Reply(text=""))  # fmt: skip
    with pytest.raises(RefreshFailedError):
        await refresh(RefreshDeps.of(router), provider="groq", workloads=ALL_WORKLOADS)
    assert "new/model-b" not in {s.model for s in catalog.list_suggestions()}
    assert written(catalog, REFRESH_COMPLETED) == 6


@pytest.mark.anyio
async def test_a_model_suggested_twice_in_one_run_is_kept_once(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    fake.script(ASKED, Reply(text=answer("new/model-a", workload="Code")))
    report = await refresh(
        RefreshDeps.of(router), provider="groq", workloads=(Workload.CHAT, Workload.CODE)
    )
    assert [(s.model, s.workload) for s in report.kept] == [("new/model-a", Workload.CODE)]
    assert report.dropped[0].reason == "already suggested for Code in this run"
    assert written(catalog, SUGGESTION_PROPOSED) == 1


@pytest.mark.anyio
async def test_the_scheduled_refresh_skips_pairs_refreshed_recently(
    router: Router, catalog: Catalog, fake: FakeProviderServer, clock: FakeClock
) -> None:
    # Given groq is the only provider with a key, and chat was refreshed a moment ago.
    fake.script(ASKED, Reply(text=answer("new/model-a")))
    await refresh(RefreshDeps.of(router), provider="groq")
    # When every provider is refreshed, chat is skipped and the other five are asked.
    first = await refresh_all(RefreshDeps.of(router), max_age=timedelta(days=7))
    assert first.providers == ["groq"]
    assert [(r.workload, r.status) for r in first.results] == [
        (w, "recent" if w is Workload.CHAT else "refreshed") for w in ALL_WORKLOADS
    ]
    # And right after, everything is recent.
    again = await refresh_all(RefreshDeps.of(router), max_age=timedelta(days=7))
    assert again.count("recent") == 6 and again.count("refreshed") == 0
    # Eight days on, every pair is due again.
    clock.now += timedelta(days=8)
    later = await refresh_all(RefreshDeps.of(router), max_age=timedelta(days=7))
    assert later.count("refreshed") == 6
    assert set(catalog.last_refreshes()) == {("groq", w.value) for w in ALL_WORKLOADS}


@pytest.mark.anyio
async def test_a_failing_pair_does_not_stop_the_scheduled_refresh(
    router: Router, catalog: Catalog, fake: FakeProviderServer
) -> None:
    # An answer with no suggestions in it (an empty one is a provider failure, which cools
    # the model down and would fail the other pairs too).
    fake.script(ASKED, Reply(text="Sorry, I cannot help."), Reply(text=answer("new/model-a")))
    report = await refresh_all(RefreshDeps.of(router))
    assert [r.status for r in report.results] == ["failed"] + ["refreshed"] * 5
    assert report.results[0].error and "no usable answer" in report.results[0].error
    assert written(catalog, REFRESH_COMPLETED) == 5
    # A dry run of the failed pair records nothing either.
    dry = await refresh_all(RefreshDeps.of(router), dry_run=True)
    assert [r.status for r in dry.results] == ["refreshed"] + ["recent"] * 5
    assert written(catalog, REFRESH_COMPLETED) == 5
