"""Suggestion commands: propose (or revise), reject, put on trial, end a trial."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from freegin_ai.adapters.application.roster import AdoptOutcome, RosterCommands
from freegin_ai.adapters.application.writer import Writer
from freegin_ai.domain.commands import AdoptModel, ProposeSuggestion, RejectSuggestion
from freegin_ai.domain.names import check_model_name, roster_entry_id, suggestion_id
from freegin_ai.domain.providers import parse_provider
from freegin_ai.domain.topics import PENDING, TRIAL
from freegin_ai.domain.workloads import Workload


@dataclass(frozen=True, slots=True)
class ProposeOutcome:
    """What proposing did to each suggestion: proposed, revised, or skipped with a reason."""

    proposed: list[str] = field(default_factory=list)
    revised: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class SuggestionCommands:
    """The suggestions' command handlers; adopting a trial goes through the roster's."""

    def __init__(self, writer: Writer, roster: RosterCommands) -> None:
        self.writer = writer
        self.roster = roster

    def propose(
        self,
        commands: list[ProposeSuggestion],
        *,
        extra: Callable[[], Sequence[Any]] | None = None,
    ) -> ProposeOutcome:
        """Record suggestions, all in one transaction: new ones proposed, pending ones revised.

        Adopted, rejected and on-trial suggestions are left as they are and reported skipped.
        `extra` makes further aggregates to append in the same transaction (a refresh's run
        record); it is called on every attempt, since saving consumes their pending events.
        """
        from freegin_ai.domain.suggestions import Suggestion

        writer = self.writer

        def attempt() -> ProposeOutcome:
            at = writer.clock()
            outcome = ProposeOutcome()
            changed: list[Suggestion] = []
            for c in commands:
                existing = writer.get(Suggestion, suggestion_id(c.provider, c.workload, c.model))
                details: dict[str, Any] = {
                    "rationale": c.rationale,
                    "metadata": c.metadata,
                    "production_ready": c.production_ready,
                    "notes": c.notes,
                    "provenance": c.provenance,
                }
                if existing is None:
                    changed.append(
                        Suggestion.propose(
                            provider=c.provider,
                            workload=c.workload,
                            model=c.model,
                            at=at,
                            **details,
                        )
                    )
                    outcome.proposed.append(c.model)
                elif existing.status == PENDING:
                    existing.propose_again(at=at, **details)
                    changed.append(existing)
                    outcome.revised.append(c.model)
                else:
                    outcome.skipped.append((c.model, f"already {existing.status}"))
            others = list(extra()) if extra is not None else []
            if changed or others:
                writer.store.save(*changed, *others)
            return outcome

        return writer.run(attempt)

    def reject_suggestion(self, command: RejectSuggestion) -> None:
        """Turn a suggestion down."""
        from freegin_ai.domain.errors import SuggestionStateError
        from freegin_ai.domain.suggestions import Suggestion

        writer = self.writer
        writer.update(
            Suggestion,
            suggestion_id(command.provider, command.workload, command.model),
            lambda: SuggestionStateError(
                f"no suggestion {command.model!r} for provider {command.provider!r} and "
                f"workload {command.workload!r}"
            ),
            lambda suggestion: suggestion.reject(reason=command.reason, at=writer.clock()),
        )

    def start_trial(self, *, provider: str, workload: str, model: str, percent: float) -> bool:
        """Put a suggestion on trial (proposing it first if nobody had); True if it was new.

        A model already in the active roster is refused (SuggestionStateError).
        """
        from freegin_ai.domain.errors import SuggestionStateError
        from freegin_ai.domain.roster import RosterEntry
        from freegin_ai.domain.suggestions import Suggestion

        writer = self.writer
        provider = parse_provider(provider)
        workload_value = Workload.parse(workload).value
        model = check_model_name(model)

        def attempt() -> bool:
            at = writer.clock()
            entry = writer.get(RosterEntry, roster_entry_id(provider, workload_value, model))
            if entry is not None and entry.is_active:
                raise SuggestionStateError(
                    f"model {model!r} is already active for provider {provider!r} and workload "
                    f"{workload_value!r}: there is nothing to put on trial"
                )
            suggestion = writer.get(Suggestion, suggestion_id(provider, workload_value, model))
            created = suggestion is None
            if suggestion is None:
                suggestion = Suggestion.propose(
                    provider=provider,
                    workload=workload_value,
                    model=model,
                    rationale="put on trial by hand",
                    metadata=None,
                    production_ready=None,
                    notes=None,
                    provenance={"source": "manual"},
                    at=at,
                )
            suggestion.start_trial(percent=percent, at=at)
            writer.store.save(suggestion)
            return created

        return writer.run(attempt)

    def end_trial(
        self,
        *,
        provider: str,
        workload: str,
        model: str,
        adopt: bool,
        priority: int | None = None,
        reason: str = "",
    ) -> AdoptOutcome | None:
        """End a trial: adopt the model into the roster, or reject it."""
        from freegin_ai.domain.errors import SuggestionStateError
        from freegin_ai.domain.suggestions import Suggestion

        writer = self.writer
        provider = parse_provider(provider)
        workload_value = Workload.parse(workload).value
        model = model.strip()
        current = writer.get(Suggestion, suggestion_id(provider, workload_value, model))
        if current is None or current.status != TRIAL:
            raise SuggestionStateError(
                f"model {model!r} is not on trial for provider {provider!r} and workload "
                f"{workload_value!r}"
            )
        if adopt:
            return self.roster.adopt_model(
                AdoptModel(
                    provider=provider,
                    workload=workload_value,
                    model=model,
                    priority=priority,
                    rationale=current.rationale,
                    source="suggestion",
                )
            )
        writer.update(
            Suggestion,
            suggestion_id(provider, workload_value, model),
            lambda: SuggestionStateError(f"suggestion {model!r} disappeared"),
            lambda suggestion: suggestion.end_trial(adopt=False, reason=reason, at=writer.clock()),
        )
        return None
