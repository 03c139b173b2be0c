"""The events table read and written in plain SQL (adapters.recorder) is eventsourcing-
sqlalchemy's table: rows either writes, the other reads back the same; a version written
twice is eventsourcing's IntegrityError; no command needs the library's ORM models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from freegin_ai.adapters.catalog import Catalog
from freegin_ai.adapters.store import APPLICATION_NAME, EventStore
from freegin_ai.domain.commands import AdoptModel, RetireModel
from freegin_ai.domain.roster import RosterEntry

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    store = EventStore(database_url)
    store.create_log()
    try:
        yield store
    finally:
        store.close()


def library_recorder(url: str) -> Any:
    """eventsourcing-sqlalchemy's own recorder of the same table."""
    from eventsourcing.utils import Environment
    from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory

    factory = SQLAlchemyFactory(Environment(APPLICATION_NAME, {"SQLALCHEMY_URL": url}))
    return factory.application_recorder()


def entry(model: str) -> RosterEntry:
    return RosterEntry.adopt(
        provider="groq", workload="chat", model=model, priority=5, rationale=None,
        metadata=None, source="manual", at=AT,
    )  # fmt: skip


def test_events_we_write_read_the_same_through_the_library(store: EventStore) -> None:
    # Given an entry adopted, then retired, through our recorder
    adopted = entry("m-1")
    store.save(adopted)
    adopted.retire(reason="old", at=AT)
    store.save(adopted)
    # When the library's recorder reads its stream and the log
    library = library_recorder(store.url)
    try:
        theirs = library.select_events(adopted.id)
        notifications = library.select_notifications(start=1, limit=10)
    finally:
        library.datastore.engine.dispose()
    # Then it finds what ours finds: same ids, versions, topics and bytes
    ours = store.app.recorder.select_events(adopted.id)
    assert [e.originator_version for e in theirs] == [1, 2]
    assert theirs == ours
    assert [(n.id, n.originator_id) for n in notifications] == [(1, adopted.id), (2, adopted.id)]
    assert store.app.recorder.select_notifications(start=1, limit=10) == notifications


def test_events_the_library_wrote_load_through_ours(store: EventStore) -> None:
    # Given a stream written by the library's recorder (a database of an earlier version)
    written = entry("m-2")
    stored = [store.app.mapper.to_stored_event(e) for e in written.collect_events()]
    library = library_recorder(store.url)
    try:
        library.insert_events(stored)
    finally:
        library.datastore.engine.dispose()
    # When the Application loads it through ours, then the aggregate is the same
    loaded: Any = store.app.repository.get(written.id)
    assert (loaded.model, loaded.priority, loaded.version) == ("m-2", 5, 1)
    assert store.app.recorder.max_notification_id() == 1


def test_select_events_honours_bounds_order_and_limit(store: EventStore) -> None:
    stream = entry("m-3")
    for priority in (6, 7, 8):
        stream.adopt_again(priority=priority, rationale=None, metadata=None, source="manual",
                           at=AT)  # fmt: skip
    store.save(stream)
    recorder = store.app.recorder

    def versions(**bounds: Any) -> list[int]:
        return [e.originator_version for e in recorder.select_events(stream.id, **bounds)]

    assert versions() == [1, 2, 3, 4]
    assert versions(gt=1, lte=3) == [2, 3]
    assert versions(desc=True, limit=2) == [4, 3]
    assert recorder.select_events(uuid4()) == []
    assert recorder.select_notifications(start=2, limit=1, inclusive_of_start=False)[0].id == 3
    assert recorder.select_notifications(start=None, limit=9, topics=["nothing"]) == []


def test_a_version_written_twice_is_an_integrity_error_and_nothing_is_appended(
    store: EventStore,
) -> None:
    # Given a stream at version 1
    first = entry("m-4")
    store.save(first)
    # When another writer appends version 1 of the same stream again
    again = StoredEvent(originator_id=first.id, originator_version=1, topic="t", state=b"{}")
    with pytest.raises(IntegrityError):
        store.app.recorder.insert_events([again])
    # Then the log holds only the first
    assert store.last_position() == 1


def test_conflicting_commands_still_both_land(database_url: str) -> None:
    # Two catalogs on one database: the second one's view of the entry is one version behind
    one, two = Catalog.open(database_url, seed=False), Catalog.open(database_url, seed=False)
    try:
        one.adopt_model(AdoptModel(provider="groq", workload="chat", model="m", priority=1))
        two.retire_model(RetireModel(provider="groq", workload="chat", model="m"))
        one.adopt_model(AdoptModel(provider="groq", workload="chat", model="m", priority=2))
        [row] = two.list_models(include_retired=True)
        assert (row.status, row.priority) == ("active", 2)
    finally:
        one.close()
        two.close()


def test_a_command_never_imports_the_orm(database_url: str) -> None:
    # Given a catalog in use (creating the events table is the library's, on first use)
    Catalog.open(database_url).close()
    # When another process adopts and retires, then it never loaded the ORM models,
    # SQLAlchemy-Utils or the dialects they drag in: a third of a command's start-up
    code = (
        "import sys\n"
        "from freegin_ai.adapters.catalog import Catalog\n"
        "from freegin_ai.domain.commands import AdoptModel, RetireModel\n"
        "c = Catalog.open(sys.argv[1])\n"
        "c.adopt_model(AdoptModel(provider='groq', workload='chat', model='m', priority=1))\n"
        "c.retire_model(RetireModel(provider='groq', workload='chat', model='m'))\n"
        "c.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy.orm', "
        "'sqlalchemy_utils', 'eventsourcing_sqlalchemy', 'sqlalchemy.dialects.mssql'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, database_url], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_ids_are_bound_as_the_library_binds_them(store: EventStore) -> None:
    uuid = UUID("12345678-1234-5678-1234-567812345678")
    expected = uuid if store.dialect == "postgresql" else uuid.bytes
    assert store.bind_id(uuid) == expected
