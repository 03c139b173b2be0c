"""Roster commands: seed the defaults, adopt a model, retire a model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from freegin_ai.adapters.application.writer import Writer
from freegin_ai.domain.commands import AdoptModel, RetireModel
from freegin_ai.domain.defaults import DEFAULT_MODELS, DefaultModel
from freegin_ai.domain.names import roster_entry_id, suggestion_id
from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.queries import list_roster_pairs
from freegin_ai.projections.rows import RosterRow

if TYPE_CHECKING:
    from freegin_ai.domain.roster import RetirementCause, RosterEntry


@dataclass(frozen=True, slots=True)
class AdoptOutcome:
    """What adopting did: `action` is adopted, reinstated, reprioritised or unchanged."""

    action: str
    provider: str
    workload: Workload
    model: str
    priority: int
    suggestion_marked: bool


class RosterCommands:
    """The roster's command handlers. Aggregate classes are imported when a handler runs: a
    query-only process (`list-models`) starts without building them."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def seed_defaults(self, defaults: tuple[DefaultModel, ...] = DEFAULT_MODELS) -> int:
        """Adopt the defaults of every (provider, workload) that never had a roster entry."""
        writer = self.writer

        def missing() -> list[DefaultModel]:
            with writer.store.reader.connect() as conn:
                seen = list_roster_pairs(conn)
            return [d for d in defaults if (d.provider, d.workload.value) not in seen]

        if not missing():
            return 0  # the usual open: nothing to append, nothing to catch up

        def attempt() -> int:
            todo = missing()  # again: another writer may have seeded meanwhile
            if not todo:
                return 0
            from freegin_ai.domain.roster import RosterEntry

            at = writer.clock()
            writer.store.save(
                *(
                    RosterEntry.adopt(
                        provider=d.provider,
                        workload=d.workload.value,
                        model=d.model,
                        priority=d.priority,
                        rationale=d.rationale,
                        metadata=d.metadata,
                        source="default",
                        at=at,
                    )
                    for d in todo
                )
            )
            return len(todo)

        return writer.run(attempt)

    def adopt_model(self, command: AdoptModel) -> AdoptOutcome:
        """Adopt a model (new, priority change or reinstatement); marks its suggestion adopted."""
        from freegin_ai.domain.adoption import adopt
        from freegin_ai.domain.roster import RosterEntry
        from freegin_ai.domain.suggestions import Suggestion

        writer = self.writer
        key = (command.provider, command.workload, command.model)

        def attempt() -> AdoptOutcome:
            adoption = adopt(
                command,
                writer.get(RosterEntry, roster_entry_id(*key)),
                writer.get(Suggestion, suggestion_id(*key)),
                at=writer.clock(),
            )
            writer.store.save(adoption.entry, adoption.suggestion)
            return AdoptOutcome(
                action=adoption.action,
                provider=command.provider,
                workload=Workload(command.workload),
                model=command.model,
                priority=adoption.entry.priority,
                suggestion_marked=adoption.suggestion is not None,
            )

        return writer.run(attempt)

    def retire_model(self, command: RetireModel) -> None:
        """Retire an active roster entry."""
        from freegin_ai.domain.errors import NotActiveError
        from freegin_ai.domain.roster import RosterEntry

        writer = self.writer
        self.writer.update(
            RosterEntry,
            roster_entry_id(command.provider, command.workload, command.model),
            lambda: NotActiveError(
                f"model {command.model!r} is not in the roster for provider "
                f"{command.provider!r} and workload {command.workload!r}"
            ),
            lambda entry: entry.retire(reason=command.reason, at=writer.clock()),
        )


def propose_retirements(
    writer: Writer,
    rows: Iterable[RosterRow],
    *,
    why: Callable[[RosterRow], str],
    cause: RetirementCause,
    source: str,
    at: datetime,
) -> list[tuple[RosterRow, RosterEntry]]:
    """Propose retiring each row's roster entry (ADR 0016): the rows proposed now, with their
    changed entries for the caller to save. An entry already proposed, or no longer active,
    is left as it is."""
    from freegin_ai.domain.roster import RosterEntry

    proposed = []
    for row in rows:
        entry = writer.get(RosterEntry, roster_entry_id(row.provider, row.workload, row.model))
        if entry is not None and entry.propose_retirement(
            reason=why(row), at=at, cause=cause, source=source
        ):
            proposed.append((row, entry))
    return proposed
