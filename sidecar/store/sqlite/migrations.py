"""Versioned, append-only schema migrations, recorded in the database file.

Each migration is applied once, in order, inside one transaction with the bookkeeping
row that records it. A checksum of its statements is recorded too, so editing a
migration that databases already applied is caught at startup instead of leaving
databases that disagree on their schema: add a new migration instead.
Reopening an up-to-date database changes nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from sidecar.errors import MigrationError

__all__ = ["MIGRATIONS", "Migration", "migrate"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change; `statements` run in order in a single transaction."""

    version: int
    name: str
    statements: tuple[str, ...]

    @property
    def checksum(self) -> str:
        """SHA-256 of the statements with white space folded (layout edits are harmless)."""
        folded = "\n".join(" ".join(statement.split()) for statement in self.statements)
        return hashlib.sha256(folded.encode("utf-8")).hexdigest()


_INITIAL = Migration(
    1,
    "initial schema",
    (
        """CREATE TABLE installations (
            installation_id       TEXT PRIMARY KEY,
            shop_domain           TEXT,
            shop_name             TEXT,
            external_account_ref  TEXT,
            external_account_name TEXT,
            status                TEXT NOT NULL DEFAULT 'inactive'
                                  CHECK (status IN ('inactive', 'active', 'uninstalled')),
            installed_at          TEXT,
            activated_at          TEXT,
            deactivated_at        TEXT,
            uninstalled_at        TEXT,
            created_at            TEXT NOT NULL,
            updated_at            TEXT NOT NULL
        ) STRICT""",
        "CREATE INDEX installations_status ON installations (status)",
        """CREATE TABLE installation_state (
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            key             TEXT NOT NULL,
            value           TEXT NOT NULL,
            encrypted       INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
            updated_at      TEXT NOT NULL,
            PRIMARY KEY (installation_id, key)
        ) STRICT""",
        """CREATE TABLE webhook_log (
            id              INTEGER PRIMARY KEY,
            received_at     TEXT NOT NULL,
            event           TEXT,
            installation_id TEXT,
            signature_ok    INTEGER NOT NULL CHECK (signature_ok IN (0, 1)),
            payload_json    TEXT NOT NULL
        ) STRICT""",
        "CREATE INDEX webhook_log_received_at ON webhook_log (received_at)",
        "CREATE INDEX webhook_log_installation ON webhook_log (installation_id, id)",
        """CREATE TABLE webhook_claims (
            installation_id TEXT NOT NULL,
            dedup_key       TEXT NOT NULL,
            claimed_at      TEXT NOT NULL,
            PRIMARY KEY (installation_id, dedup_key)
        ) STRICT""",
        "CREATE INDEX webhook_claims_claimed_at ON webhook_claims (claimed_at)",
        """CREATE TABLE sync_cursors (
            installation_id      TEXT NOT NULL
                                 REFERENCES installations (installation_id) ON DELETE CASCADE,
            entity               TEXT NOT NULL,
            source_key           TEXT NOT NULL DEFAULT '',
            last_synced_at       TEXT,
            last_status          TEXT,
            last_error           TEXT,
            items                INTEGER NOT NULL DEFAULT 0,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            updated_at           TEXT NOT NULL,
            PRIMARY KEY (installation_id, entity, source_key)
        ) STRICT""",
        """CREATE TABLE sync_runs (
            id              INTEGER PRIMARY KEY,
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            kind            TEXT NOT NULL CHECK (kind IN ('incremental', 'full')),
            status          TEXT NOT NULL
                            CHECK (status IN ('running', 'ok', 'partial', 'failed', 'cancelled')),
            summary_json    TEXT,
            started_at      TEXT NOT NULL,
            finished_at     TEXT
        ) STRICT""",
        "CREATE INDEX sync_runs_installation ON sync_runs (installation_id, id)",
        "CREATE INDEX sync_runs_started_at ON sync_runs (started_at)",
        """CREATE TABLE inbound_events (
            id              INTEGER PRIMARY KEY,
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            dedup_key       TEXT NOT NULL,
            action          TEXT,
            status          TEXT NOT NULL CHECK (status IN ('received', 'done', 'failed')),
            error           TEXT,
            received_at     TEXT NOT NULL,
            processed_at    TEXT,
            UNIQUE (installation_id, dedup_key)
        ) STRICT""",
        "CREATE INDEX inbound_events_received_at ON inbound_events (received_at)",
        """CREATE TABLE rejected_items (
            id              INTEGER PRIMARY KEY,
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            run_id          INTEGER REFERENCES sync_runs (id) ON DELETE SET NULL,
            entity          TEXT NOT NULL,
            source_key      TEXT NOT NULL DEFAULT '',
            target          TEXT NOT NULL,
            item_json       TEXT NOT NULL,
            reason          TEXT NOT NULL,
            created_at      TEXT NOT NULL
        ) STRICT""",
        "CREATE INDEX rejected_items_installation ON rejected_items (installation_id, id)",
        "CREATE INDEX rejected_items_created_at ON rejected_items (created_at)",
        """CREATE TABLE audit_log (
            id              INTEGER PRIMARY KEY,
            at              TEXT NOT NULL,
            actor           TEXT NOT NULL,
            action          TEXT NOT NULL,
            installation_id TEXT,
            target          TEXT,
            detail_json     TEXT NOT NULL,
            client_ip       TEXT
        ) STRICT""",
        "CREATE INDEX audit_log_at ON audit_log (at)",
    ),
)

_SYNC_PROGRESS = Migration(
    2,
    "sync resume points, leases, run owners",
    (
        # Where an unfinished window stands: the app's token for the next page and what was
        # acknowledged so far. Written after each acknowledged page; dropped, in the same
        # transaction, when the cursor moves at the end of the window.
        """CREATE TABLE sync_resume_points (
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            entity          TEXT NOT NULL,
            source_key      TEXT NOT NULL DEFAULT '',
            run_kind        TEXT NOT NULL CHECK (run_kind IN ('incremental', 'full')),
            window_since    TEXT NOT NULL,
            window_until    TEXT NOT NULL,
            next_token      TEXT,
            pages           INTEGER NOT NULL DEFAULT 0,
            items           INTEGER NOT NULL DEFAULT 0,
            sent            INTEGER NOT NULL DEFAULT 0,
            rejected        INTEGER NOT NULL DEFAULT 0,
            updated_at      TEXT NOT NULL,
            PRIMARY KEY (installation_id, entity, source_key)
        ) STRICT""",
        # Exclusive, expiring ownership of a named piece of work (e.g. one installation's
        # sync), across processes sharing the database.
        """CREATE TABLE leases (
            name        TEXT PRIMARY KEY,
            owner       TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            expires_at  TEXT NOT NULL
        ) STRICT""",
        "ALTER TABLE sync_runs ADD COLUMN owner TEXT",
        "CREATE INDEX sync_runs_status ON sync_runs (status)",
    ),
)

_INBOUND_OUTBOX = Migration(
    3,
    "inbound outbox",
    (
        # Queued inbound events on their way to ShopiMind. One row per accepted event, keyed
        # by its `inbound_events` id (the dedup claim), written in the same transaction as
        # the claim. Delivery state lives here, so a restart resumes where it stopped.
        # `route` is the resolved destination (`event:<code>`, `contact:contacts`,
        # `bulk:<path>`); `target` is the action's target as declared, for people.
        """CREATE TABLE inbound_outbox (
            event_id        INTEGER PRIMARY KEY
                            REFERENCES inbound_events (id) ON DELETE CASCADE,
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            action          TEXT NOT NULL,
            target          TEXT NOT NULL,
            route           TEXT NOT NULL,
            payload_json    TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            status          TEXT NOT NULL
                            CHECK (status IN ('queued', 'delivered', 'failed', 'dead')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT,
            next_attempt_at TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL,
            delivered_at    TEXT
        ) STRICT""",
        # The deliverer asks for the oldest pending event of each installation: only pending
        # rows are indexed, so the index stays small however many events were delivered.
        """CREATE INDEX inbound_outbox_pending ON inbound_outbox (installation_id, event_id)
            WHERE status IN ('queued', 'failed')""",
        # The retention purge deletes old `inbound_events` rows, which would cascade to an
        # event still waiting for ShopiMind: skip those rows (RAISE(IGNORE) skips just this
        # row and the DELETE goes on), so an undelivered event is never purged.
        """CREATE TRIGGER inbound_events_keep_pending BEFORE DELETE ON inbound_events
            WHEN EXISTS (
                SELECT 1 FROM inbound_outbox
                WHERE event_id = OLD.id AND status IN ('queued', 'failed')
            )
            BEGIN SELECT RAISE(IGNORE); END""",
    ),
)

_RUN_OUTCOMES = Migration(
    4,
    "run outcomes interrupted and skipped",
    (
        # A run killed with its process is `interrupted` (not `failed`); a run whose every
        # cursor waited out a backoff is `skipped`. SQLite cannot alter a CHECK: the table
        # is rebuilt. Dropping it would set `rejected_items.run_id` to NULL (ON DELETE SET
        # NULL fires on the implicit delete of a DROP TABLE), so those links are kept aside
        # and restored once the new table has the old name.
        """CREATE TABLE sync_runs_next (
            id              INTEGER PRIMARY KEY,
            installation_id TEXT NOT NULL
                            REFERENCES installations (installation_id) ON DELETE CASCADE,
            kind            TEXT NOT NULL CHECK (kind IN ('incremental', 'full')),
            status          TEXT NOT NULL CHECK (status IN
                            ('running', 'ok', 'partial', 'failed', 'cancelled',
                             'interrupted', 'skipped')),
            summary_json    TEXT,
            started_at      TEXT NOT NULL,
            finished_at     TEXT,
            owner           TEXT
        ) STRICT""",
        "INSERT INTO sync_runs_next (id, installation_id, kind, status, summary_json, "
        "started_at, finished_at, owner) SELECT id, installation_id, kind, status, "
        "summary_json, started_at, finished_at, owner FROM sync_runs",
        "CREATE TABLE rejected_item_runs (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL)",
        "INSERT INTO rejected_item_runs (id, run_id) "
        "SELECT id, run_id FROM rejected_items WHERE run_id IS NOT NULL",
        "DROP TABLE sync_runs",
        "ALTER TABLE sync_runs_next RENAME TO sync_runs",
        "CREATE INDEX sync_runs_installation ON sync_runs (installation_id, id)",
        "CREATE INDEX sync_runs_started_at ON sync_runs (started_at)",
        "CREATE INDEX sync_runs_status ON sync_runs (status)",
        "UPDATE rejected_items SET run_id = (SELECT r.run_id FROM rejected_item_runs r "
        "WHERE r.id = rejected_items.id) WHERE id IN (SELECT id FROM rejected_item_runs)",
        "DROP TABLE rejected_item_runs",
    ),
)

_CURSOR_RETRY_AT = Migration(
    5,
    "cursor retry_at",
    (
        # ShopiMind's Retry-After, when longer than a request may wait: the cursor's next
        # attempt no sooner than this (on top of its backoff after failures).
        "ALTER TABLE sync_cursors ADD COLUMN retry_at TEXT",
    ),
)

_CONSOLE_INDEXES = Migration(
    6,
    "outbox indexes for the admin reads",
    (
        # The admin console and API read one installation's outbox (its events, its counts
        # by status) among hundreds of thousands: without this, each read walks the table
        # (60 ms at 300,000 rows; 0.1 ms with it).
        "CREATE INDEX inbound_outbox_installation ON inbound_outbox (installation_id, status)",
        # The overview counts every event by status: on this index, in order, without
        # reading the rows or sorting them (200 ms → 30 ms at 300,000 rows).
        "CREATE INDEX inbound_outbox_status ON inbound_outbox (status)",
    ),
)

_BACKLOG_TALLIES = Migration(
    7,
    "backlog tallies",
    (
        # Counts of outbox rows by status and of dead-letter items, per installation, kept
        # by triggers in the same transaction as each row change (cascaded deletes
        # included), so the overview and /metrics read a few rows instead of counting
        # 300,000 (a full scan held the store's one connection for 80+ ms). A row per
        # installation, not one global row, so writers of different installations never
        # contend on one counter; a tally that falls to 0 is deleted. Tallies:
        # 'outbox:<status>' and 'dead_letter'.
        """CREATE TABLE backlog_tallies (
            tally           TEXT NOT NULL,
            installation_id TEXT NOT NULL,
            n               INTEGER NOT NULL,
            PRIMARY KEY (tally, installation_id)
        ) STRICT, WITHOUT ROWID""",
        """INSERT INTO backlog_tallies (tally, installation_id, n)
            SELECT 'outbox:' || status, installation_id, COUNT(*) FROM inbound_outbox
            GROUP BY status, installation_id""",
        """INSERT INTO backlog_tallies (tally, installation_id, n)
            SELECT 'dead_letter', installation_id, COUNT(*) FROM rejected_items
            GROUP BY installation_id""",
        """CREATE TRIGGER inbound_outbox_tally_insert AFTER INSERT ON inbound_outbox
            BEGIN
            INSERT INTO backlog_tallies (tally, installation_id, n)
            VALUES ('outbox:' || NEW.status, NEW.installation_id, 1)
            ON CONFLICT (tally, installation_id) DO UPDATE SET n = n + 1;
            END""",
        """CREATE TRIGGER inbound_outbox_tally_update AFTER UPDATE OF status ON inbound_outbox
            WHEN OLD.status <> NEW.status
            BEGIN
            UPDATE backlog_tallies SET n = n - 1
                WHERE tally = 'outbox:' || OLD.status AND installation_id = OLD.installation_id;
            DELETE FROM backlog_tallies
                WHERE tally = 'outbox:' || OLD.status AND installation_id = OLD.installation_id
                AND n <= 0;
            INSERT INTO backlog_tallies (tally, installation_id, n)
            VALUES ('outbox:' || NEW.status, NEW.installation_id, 1)
            ON CONFLICT (tally, installation_id) DO UPDATE SET n = n + 1;
            END""",
        """CREATE TRIGGER inbound_outbox_tally_delete AFTER DELETE ON inbound_outbox
            BEGIN
            UPDATE backlog_tallies SET n = n - 1
                WHERE tally = 'outbox:' || OLD.status AND installation_id = OLD.installation_id;
            DELETE FROM backlog_tallies
                WHERE tally = 'outbox:' || OLD.status AND installation_id = OLD.installation_id
                AND n <= 0;
            END""",
        """CREATE TRIGGER rejected_items_tally_insert AFTER INSERT ON rejected_items
            BEGIN
            INSERT INTO backlog_tallies (tally, installation_id, n)
            VALUES ('dead_letter', NEW.installation_id, 1)
            ON CONFLICT (tally, installation_id) DO UPDATE SET n = n + 1;
            END""",
        """CREATE TRIGGER rejected_items_tally_delete AFTER DELETE ON rejected_items
            BEGIN
            UPDATE backlog_tallies SET n = n - 1
                WHERE tally = 'dead_letter' AND installation_id = OLD.installation_id;
            DELETE FROM backlog_tallies
                WHERE tally = 'dead_letter' AND installation_id = OLD.installation_id AND n <= 0;
            END""",
    ),
)

_LEASE_EPOCHS = Migration(
    8,
    "lease epochs",
    (
        # The fencing token: each new holder of a name gets the epoch + 1, and every fenced
        # write checks it in its own transaction. Rows are no longer deleted on release (it
        # expires them), so a name's epoch only ever grows.
        "ALTER TABLE leases ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
    ),
)

_REPLICAS = Migration(
    9,
    "replicas",
    (
        """CREATE TABLE replicas (
            id            TEXT PRIMARY KEY,
            version       TEXT NOT NULL,
            host          TEXT NOT NULL,
            pid           INTEGER NOT NULL,
            alive_seconds REAL NOT NULL,
            started_at    TEXT NOT NULL,
            heartbeat_at  TEXT NOT NULL,
            alive_until   TEXT NOT NULL,
            stopped_at    TEXT
        ) STRICT""",
        "CREATE INDEX replicas_heartbeat_at ON replicas (heartbeat_at)",
    ),
)


_WEBHOOK_CLAIM_COMPLETION = Migration(
    10,
    "webhook claim completion",
    (
        # A claim whose processing never completed (its process died mid-way) can be
        # retaken once stale, or at once when the replica that claimed it (claimed_by, a
        # replicas id) is no longer alive; the claims made before this migration count as
        # completed, and have no claimer.
        "ALTER TABLE webhook_claims ADD COLUMN completed_at TEXT",
        "ALTER TABLE webhook_claims ADD COLUMN claimed_by TEXT",
        "UPDATE webhook_claims SET completed_at = claimed_at",
    ),
)


MIGRATIONS: tuple[Migration, ...] = (
    _INITIAL,
    _SYNC_PROGRESS,
    _INBOUND_OUTBOX,
    _RUN_OUTCOMES,
    _CURSOR_RETRY_AT,
    _CONSOLE_INDEXES,
    _BACKLOG_TALLIES,
    _LEASE_EPOCHS,
    _REPLICAS,
    _WEBHOOK_CLAIM_COMPLETION,
)
"""Every migration ever shipped, in order. Append only; never edit or remove one."""

_BOOKKEEPING = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT"""


def _check_applied(applied: dict[int, str], migrations: tuple[Migration, ...]) -> None:
    known = {migration.version: migration for migration in migrations}
    for version, checksum in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has schema version {max(applied)}, newer than this build knows "
                f"({max(known, default=0)}); run a newer shopimind-sidecar or restore a backup"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version} ({migration.name}) differs from the one this database "
                "applied; migrations are append-only: restore it and add a new one"
            )


def migrate(
    connection: sqlite3.Connection,
    applied_at: str,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> list[int]:
    """Apply the missing migrations; return the versions applied.

    Runs inside the caller's write transaction, so the schema changes and the rows that
    record them commit together or not at all (two processes starting at once are safe:
    the second waits for the write lock, then finds nothing left to do).
    """
    for position, migration in enumerate(migrations, start=1):
        if migration.version != position:
            raise MigrationError(f"migration versions must run 1, 2, 3…; found {migration.version}")
    connection.execute(_BOOKKEEPING)
    applied = {
        int(row[0]): str(row[1])
        for row in connection.execute("SELECT version, checksum FROM schema_migrations")
    }
    _check_applied(applied, migrations)
    done: list[int] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        for statement in migration.statements:
            connection.execute(statement)
        connection.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
            "VALUES (?, ?, ?, ?)",
            (migration.version, migration.name, migration.checksum, applied_at),
        )
        done.append(migration.version)
    connection.execute(f"PRAGMA user_version = {len(migrations)}")
    return done
