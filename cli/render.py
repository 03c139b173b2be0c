"""Text rendering of catalog output, in the formats of the guide."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from freegin_ai.domain.workloads import Workload
from freegin_ai.projections.rows import RosterRow, SuggestionRow

if TYPE_CHECKING:
    from freegin_ai.adapters.legacy import ImportReport


def workload_label(value: str) -> str:
    """`chat` → `Chat`; an unknown or empty workload is shown as it is."""
    try:
        return Workload(value).display
    except ValueError:
        return value or "(unknown)"


def _dash(text: str | None) -> str:
    return f" — {text}" if text else " —"


def roster_line(row: RosterRow, indent: int) -> str:
    """`   50  model — rationale` as the guide prints roster entries."""
    return f"{' ' * indent}{row.priority:>3}  {row.model}{_dash(row.rationale)}"


def suggestion_line(row: SuggestionRow) -> str:
    """`    pending  model — rationale`, with a mark when the provider does not list the model."""
    line = f"    {row.status}  {row.model}{_dash(row.rationale)}"
    if row.metadata.get("listed_by_provider") is False:
        line += "  [not listed by provider]"
    return line


def render_catalog(
    roster: list[RosterRow],
    suggestions: list[SuggestionRow] | None,
) -> str:
    """The `list-models` text: one block per (provider, workload)."""
    keys = sorted(
        {(r.provider, r.workload) for r in roster}
        | {(s.provider, s.workload) for s in (suggestions or [])}
    )
    blocks = []
    for provider, workload in keys:
        lines = [f"Provider: {provider} | Workload: {workload_label(workload)}"]
        active = [r for r in roster if (r.provider, r.workload) == (provider, workload)]
        live = [r for r in active if r.status == "active"]
        retired = [r for r in active if r.status != "active"]
        lines.append("  Active:")
        lines.extend(roster_line(r, 4) for r in live)
        if not live:
            lines.append("    (none)")
        if retired:
            lines.append("")
            lines.append("  Retired:")
            lines.extend(f"{roster_line(r, 4)}  [{r.status}]" for r in retired)
        if suggestions is not None:
            mine = [s for s in suggestions if (s.provider, s.workload) == (provider, workload)]
            lines.append("")
            lines.append("  Suggestions:")
            lines.extend(suggestion_line(s) for s in mine)
            if not mine:
                lines.append("    (none)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_roster_block(provider: str, workload: Workload, rows: Iterable[RosterRow]) -> str:
    """The guide's `Active models for huggingface / Chat:` block after an adoption."""
    lines = [f"Active models for {provider} / {workload.display}:"]
    lines.extend(roster_line(r, 2) for r in rows)
    return "\n".join(lines)


def details_text(details: dict[str, Any]) -> str:
    """`key=value` pairs of an event's details, skipping empty ones."""
    parts = []
    for key, value in details.items():
        if value is None or value == {} or value == "":
            continue
        if isinstance(value, str):
            shown = value if len(value) <= 120 else value[:117] + "..."
            parts.append(f"{key}={shown!r}" if " " in shown else f"{key}={shown}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def render_import_report(report: ImportReport) -> str:
    """The report for people: what was appended, skipped and left alone."""
    if report.nothing_new:
        lines = [
            f"Already imported: {report.source} ({report.already_imported} rows already in "
            "the catalog; nothing appended)."
        ]
    else:
        lines = [f"Imported {report.source}: {report.events} events."]
        statuses = ", ".join(f"{n} {status}" for status, n in report.suggestions.items())
        lines += [
            f"  roster entries  {report.roster_entries:>8}  ({report.retired} retired)",
            f"  suggestions     {report.suggestion_count:>8}"
            + (f"  ({statuses})" if statuses else ""),
            f"  usage rows      {report.usage_rows:>8}"
            + (f"  ({report.usage_without_model} without a model)" if report.usage_rows else ""),
        ]
        if report.already_imported:
            lines.append(
                f"{report.already_imported} rows were already in the catalog; "
                "nothing appended for them."
            )
    if report.updated_at_not_kept:
        lines.append(
            f"Changed after adoption in the earlier tool: {report.updated_at_not_kept} active "
            "model(s); what changed is unknown, so only the adoption time is kept."
        )
    if report.missing_usage_columns:
        lines.append(
            "The file's provider_usage has no "
            f"{', '.join(report.missing_usage_columns)} column(s): those values are unknown."
        )
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)} rows:")
        lines += [f"  {s.table} {s.row}: {s.reason}" for s in report.skipped]
    for old, new in report.tables_renamed.items():
        lines.append(f"Kept {old} as {new}.")
    if report.extra_tables:
        lines.append(
            f"Not imported: {', '.join(report.extra_tables)} (add credentials again with "
            "add-service)."
        )
    return "\n".join(lines)


def render_not_applied(failures: Any) -> str:
    """The events the read side recorded as not applied, one line each (ADR 0009)."""
    lines = [
        f"{len(failures)} event{'s' if len(failures) != 1 else ''} could not be applied and "
        "were skipped (the log keeps them):"
    ]
    lines += [f"  #{f.position} {f.kind} [{f.projection}]: {f.reason}" for f in failures]
    return "\n".join(lines)
