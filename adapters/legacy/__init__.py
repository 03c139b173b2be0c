"""The legacy import, a package (`detection`, `values`, `importer`): the earlier (Rust)
freegin-ai's tables, turned into the events that would have produced them.

The earlier tool kept the guide's three tables in app.db: `provider_models`,
`provider_model_suggestions` and `provider_usage` (older files lack `provider_usage.model` and
the token and cost columns), next to `provider_credentials` and `provider_health`, which are
left alone and reported. Each row becomes:

    provider_models row             ModelAdopted (source "import") at created_at, followed by
                                    ModelRetired at updated_at when it is retired
    provider_model_suggestions row  SuggestionProposed at created_at, followed at updated_at by
                                    SuggestionAdopted, TrialStarted (10 %), SuggestionRejected,
                                    or SuggestionRevised (a pending row proposed again)
    provider_usage row              UsageLogged at created_at; the workload is unknown, and so
                                    is the model when the column is missing or NULL

Two ways in, each all or nothing in one transaction:

- `migrate_in_place`: the database itself is the earlier tool's (it has no event log): the
  three tables are renamed `legacy_…` (never emptied), the event log is created and the events
  appended. Runs before anything else touches the database.
- `import_legacy_file`: another SQLite file, opened read-only and left as it is (a file in WAL
  mode gets its -wal and -shm side files back, as any reader makes them). Usage streams get
  ids derived from their source rows, and roster and suggestion streams have natural-key ids,
  so importing the same file again appends nothing.

A row that cannot be read (unknown provider or workload, a timestamp that is not one, ...) is
skipped and reported with its reason; one bad row never fails the import.
"""

from freegin_ai.adapters.errors import LegacyImportError
from freegin_ai.adapters.legacy.detection import (
    EXTRA_TABLES,
    LEGACY_TABLES,
    RENAMED_PREFIX,
    USAGE_OPTIONAL_COLUMNS,
    LegacyLayout,
    find_legacy_tables,
    read_legacy_layout,
)
from freegin_ai.adapters.legacy.importer import (
    TRIAL_PERCENT,
    ImportReport,
    SkippedRow,
    import_legacy_file,
    migrate_in_place,
    open_log,
)

__all__ = [
    "EXTRA_TABLES",
    "LEGACY_TABLES",
    "RENAMED_PREFIX",
    "TRIAL_PERCENT",
    "USAGE_OPTIONAL_COLUMNS",
    "ImportReport",
    "LegacyImportError",
    "LegacyLayout",
    "SkippedRow",
    "find_legacy_tables",
    "import_legacy_file",
    "migrate_in_place",
    "open_log",
    "read_legacy_layout",
]
