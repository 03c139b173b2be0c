"""The composition root: every part of a process is built and wired here, in this order.

1. open the store: the event store over the database URL; a database of the earlier
   freegin-ai is imported in place before the event log exists (`adapters.legacy`);
2. the read side: the projections and the projector that keeps them, set up (outdated
   tables rebuilt) and caught up;
3. the command side: the writer (load, save, retry, catch up) and the handlers per concern
   (`adapters.application`);
4. seed the default roster where a (provider, workload) never had one;
5. for routing: configuration, credentials and the provider set, the usage log (or one that
   drops everything, for a dry run) and the HTTP client;
6. for a long-running process (`serve`): all of the above and the log follower, started
   together from the environment and stopped together (`start_serving`, `ServingParts`).

The façades people use, `Catalog.open(url)` and `Router.open(env)`, start here; so does
`serve`, which puts the router façade over the parts `start_serving` hands it. Nothing
here imports the façades, so the graph has no cycle. Nothing swaps another object's parts at run
time: a dry-run or synchronous router is a router wired differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from freegin_ai.adapters.application.roster import RosterCommands
from freegin_ai.adapters.application.suggestions import SuggestionCommands
from freegin_ai.adapters.application.writer import Writer, utc_now
from freegin_ai.adapters.store import EventStore
from freegin_ai.projections.health import HealthProjection
from freegin_ai.projections.listings import ListingProjection
from freegin_ai.projections.projector import Progress, Projector
from freegin_ai.projections.quota import QuotaLedgerProjection
from freegin_ai.projections.roster import RosterProjection
from freegin_ai.projections.suggestions import SuggestionProjection
from freegin_ai.projections.usage import UsageRowsProjection, UsageStatsProjection

if TYPE_CHECKING:
    import httpx

    from freegin_ai.adapters.follower import LogFollower
    from freegin_ai.adapters.http_client import HttpClient
    from freegin_ai.adapters.legacy import ImportReport
    from freegin_ai.adapters.provider_set import ProviderSet
    from freegin_ai.adapters.usage_log import UsageLog

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class CatalogParts:
    """The catalog of one process, wired: store, read side, command side."""

    store: EventStore
    projector: Projector
    writer: Writer
    roster: RosterCommands
    suggestions: SuggestionCommands
    #: What opening imported from the earlier tool's database, if it did.
    imported: ImportReport | None = None


def open_store(
    url: str, progress: Progress | None = None
) -> tuple[EventStore, ImportReport | None]:
    """The event store over `url`, with its log; a legacy database is imported first."""
    store = EventStore(url)
    if store.has_log():  # the usual start: the importer (and what it loads) is not needed
        return store, None
    from freegin_ai.adapters.legacy import open_log

    return store, open_log(store, progress=progress)


def make_projector(store: EventStore) -> Projector:
    """Every read model, kept by one projector from the store's log."""
    return Projector(
        store.engine,
        store,
        [
            RosterProjection(),
            SuggestionProjection(),
            UsageRowsProjection(),
            UsageStatsProjection(),
            HealthProjection(),
            QuotaLedgerProjection(),
            ListingProjection(),
        ],
        reader=store.reader,
    )


def wire_catalog(
    store: EventStore,
    *,
    clock: Clock = utc_now,
    new_id: Callable[[], UUID] = uuid4,
    imported: ImportReport | None = None,
) -> CatalogParts:
    """The read side and the command handlers over an open store."""
    projector = make_projector(store)
    writer = Writer(store, projector, clock=clock, new_id=new_id)
    roster = RosterCommands(writer)
    return CatalogParts(
        store=store,
        projector=projector,
        writer=writer,
        roster=roster,
        suggestions=SuggestionCommands(writer, roster),
        imported=imported,
    )


def start_catalog(
    url: str,
    *,
    clock: Clock = utc_now,
    progress: Progress | None = None,
    seed: bool = True,
) -> CatalogParts:
    """Open (creating if needed) the catalog at a database URL, caught up and seeded."""
    store, imported = open_store(url, progress)
    parts = wire_catalog(store, clock=clock, imported=imported)
    if parts.projector.outdated():
        # One process at a time creates or rebuilds; the others find it done (ADR 0010).
        with store.setup_lock():
            parts.projector.setup(progress=progress)
    parts.projector.catch_up()
    if seed:
        parts.roster.seed_defaults()
    return parts


def provider_set(env: Mapping[str, str]) -> ProviderSet:
    """The providers callable here: config.toml, the environment and the credential store."""
    from freegin_ai.adapters.config import load_config
    from freegin_ai.adapters.credentials import CredentialStore, default_credentials_path
    from freegin_ai.adapters.provider_set import ProviderSet

    credentials = CredentialStore(default_credentials_path(env))
    return ProviderSet(load_config(env), env, credentials)


def usage_log(
    store: EventStore,
    clock: Clock,
    *,
    dry_run: bool = False,
    after_commit: Callable[[], object] | None = None,
    fsync: bool = False,
) -> UsageLog:
    """Where the router logs every call, committed before its answer (group commit, ADR
    0010), the read tables caught up after commits; a dry run gets one that drops everything."""
    from freegin_ai.adapters.usage_log import DiscardingUsageLog, UsageLog

    if dry_run:
        return DiscardingUsageLog(store, clock)
    return UsageLog(store, clock, after_commit=after_commit, fsync=fsync)


def log_follower(store: EventStore, projector: Projector) -> LogFollower:
    """For a long-running process: the read tables follow every process's appends (PostgreSQL
    LISTEN/NOTIFY; on SQLite each writer catches up itself and this does nothing)."""
    from freegin_ai.adapters.follower import LogFollower

    return LogFollower(store, projector.catch_up).start()


def http_client(
    seconds: float | httpx.Timeout, transport: str | None = None, *, one_shot: bool = False
) -> HttpClient:
    """The process's HTTP client, with timeouts always set, on the chosen transport; "auto"
    (the default) is httpx's own pool for a one-shot command, else aiohttp's (ADR 0022)."""
    from freegin_ai.adapters.http_client import DEFAULT_TRANSPORT, new_client

    return new_client(seconds, transport=transport or DEFAULT_TRANSPORT, one_shot=one_shot)


@dataclass(frozen=True, slots=True)
class ServingParts:
    """A long-running routing process (the gateway), wired: the catalog, the providers, the
    usage log, the HTTP client and the log follower. The process owns them: `aclose` stops
    them all."""

    catalog: CatalogParts
    providers: ProviderSet
    usage: UsageLog
    client: HttpClient
    follower: LogFollower

    async def aclose(self) -> None:
        """Stop the usage log (its last commits caught up), the follower and the HTTP client,
        leave the read tables current and close the store."""
        import anyio

        try:
            await anyio.to_thread.run_sync(self.usage.close)
            await anyio.to_thread.run_sync(self.follower.close)
            await self.client.aclose()
            self.catalog.projector.catch_up()
        finally:
            self.catalog.store.close()


def start_serving(env: Mapping[str, str], *, clock: Clock = utc_now) -> ServingParts:
    """Everything a long-running routing process runs on, from the environment, config.toml
    and the credential store: the catalog caught up and seeded, every call's usage committed
    before its answer, the read tables following every process's appends."""
    from freegin_ai.adapters.settings import database_url, usage_fsync

    catalog = start_catalog(database_url(env), clock=clock)
    try:
        providers = provider_set(env)
        config = providers.config
        return ServingParts(
            catalog=catalog,
            providers=providers,
            usage=usage_log(
                catalog.store,
                clock,
                after_commit=catalog.projector.catch_up,
                fsync=usage_fsync(env),
            ),
            client=http_client(config.timeout_seconds, config.http_transport),
            follower=log_follower(catalog.store, catalog.projector),
        )
    except BaseException:
        catalog.store.close()
        raise
