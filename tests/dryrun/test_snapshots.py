"""The catalog snapshots the replay takes after each migration without reading the whole catalog
are the same as a full snapshot (``catalog.SCHEMA``) of the same state, on real PostgreSQL.

After an observed migration the relations to read again come from the locks its statements
held (``_Session._snapshot_from_locks``). Each such snapshot here is compared with a full one
taken at once on the same session; the migrations cover what could slip past the locks:
renames (relations, columns, constraints, indexes, schemas, functions, enum values), enum
values added, domains, composite types, views, materialized views, partitions, triggers,
policies, sequences, drops with CASCADE, data-only migrations, a hand-made catalog write and
migrations that roll back in the idempotency and down checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dryrun_helpers import replay, write_tree

from sqlsafe.dryrun import replay as replay_module
from sqlsafe.dryrun.sandbox import Sandbox, open_sandbox

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with open_sandbox("embedded") as sb:
        yield sb


_MIGRATIONS = {
    "001_base.sql": """
        CREATE TYPE mood AS ENUM ('sad', 'ok');
        CREATE DOMAIN posint AS int CHECK (VALUE > 0);
        CREATE TYPE pair AS (a int, b text);
        CREATE TABLE p (id int PRIMARY KEY, name text);
        CREATE TABLE t (id serial PRIMARY KEY, pid int REFERENCES p (id), m mood DEFAULT 'ok',
                        n posint, pr pair, v varchar(5));
        CREATE INDEX t_v ON t (v);
        CREATE VIEW tv AS SELECT id, m FROM t;
        CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';
        """,
    "002_rename_column.sql": "ALTER TABLE t RENAME COLUMN v TO w;\n",
    "003_rename_table.sql": "ALTER TABLE p RENAME TO parent;\n",
    "004_enum_add.sql": "ALTER TYPE mood ADD VALUE 'happy';\n",
    "005_enum_rename_value.sql": "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';\n"
                                 "ALTER TABLE t ALTER COLUMN m SET DEFAULT 'fine';\n",
    "006_composite.sql": "ALTER TYPE pair RENAME ATTRIBUTE b TO c;\n",
    "007_domain.sql": "ALTER DOMAIN posint ADD CONSTRAINT small CHECK (VALUE < 1000);\n",
    "008_schema.sql": "CREATE SCHEMA app;\nCREATE TABLE app.x (id int DEFAULT f());\n"
                      "ALTER SCHEMA app RENAME TO application;\n",
    "009_function_rename.sql": "ALTER FUNCTION f() RENAME TO g;\n",
    "010_matview_partition.sql": """
        CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM t;
        CREATE TABLE ev (at date NOT NULL, k int) PARTITION BY RANGE (at);
        CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        CREATE INDEX ev_k ON ev (k);
        """,
    "011_triggers_policies.sql": """
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
        ALTER TABLE t ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own ON t USING (pid IS NOT NULL);
        """,
    "012_data_only.sql": "INSERT INTO parent VALUES (1, 'a');\nUPDATE t SET w = 'x';\n"
                         "REFRESH MATERIALIZED VIEW mv;\n",
    "013_constraint_index_rename.sql": "ALTER TABLE t RENAME CONSTRAINT t_pid_fkey TO t_parent;\n"
                                       "ALTER INDEX t_v RENAME TO t_w;\n",
    "014_type_change.sql": "ALTER TABLE t ALTER COLUMN w TYPE text;\n"
                           "ALTER TABLE t ADD COLUMN z int NOT NULL DEFAULT 0;\n",
    "015_catalog_write.sql": "UPDATE pg_catalog.pg_attribute SET attstattarget = 7 "
                             "WHERE attrelid = 't'::regclass AND attname = 'z';\n",
    "016_drop_cascade.sql": "DROP TABLE parent CASCADE;\nDROP VIEW tv;\nDROP TYPE pair CASCADE;\n",
    "017_sequence.sql": "CREATE SEQUENCE s;\nALTER SEQUENCE s INCREMENT BY 5;\n"
                        "ALTER TABLE t ALTER COLUMN z SET DEFAULT nextval('s');\n",
    # SHARE ROW EXCLUSIVE only: the trigger's rows belong to the table.
    "018_trigger_only.sql": "CREATE TRIGGER t_ins AFTER INSERT ON t FOR EACH ROW "
                            "EXECUTE FUNCTION touch();\n",
    "019_index_only.sql": "CREATE INDEX t_z ON t (z);\n",
    # A drop and an add on one table: no rename, so nothing else is read.
    "020_drop_add.sql": "ALTER TABLE t DROP COLUMN n;\nALTER TABLE t ADD COLUMN n2 int;\n",
    # A rename that a view and an index show: their text is read again through pg_depend.
    "021_view.sql": "CREATE VIEW tw AS SELECT id, w FROM t;\nCREATE INDEX t_w2 ON t (lower(w));\n",
    "022_rename_shown.sql": "ALTER TABLE t RENAME COLUMN w TO w2;\n",
}


def test_snapshots_from_locks_equal_full_snapshots(fresh: Sandbox, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[str] = []
    fallbacks: list[int] = []
    original = replay_module._Session._snapshot_from_locks

    def checked(self: Any, base: Any, touched: set[int], rows: Any) -> Any:
        snap = original(self, base, touched, rows)
        if snap is None:
            fallbacks.append(1)
            return snap
        full = replay_module.Snapshot({}, {})
        replay_module._add_rows(full, replay_module._read_text(self.conn, "EXECUTE sqlsafe_schema"))
        differing = sorted(k for k in set(snap.objects) | set(full.objects)
                           if snap.objects.get(k) != full.objects.get(k))
        assert not differing, f"incremental snapshot differs from a full one: {differing}"
        assert snap.rels == full.rels
        # The diff against the base looks only at the owners read again: the same diff.
        whole = dataclasses.replace(snap, changed=None)
        assert replay_module.catalog_diff(base, snap) == replay_module.catalog_diff(base, whole)
        compared.append(self.dbname or "scratch")
        return snap

    monkeypatch.setattr(replay_module._Session, "_snapshot_from_locks", checked)
    # The idempotency checks' reruns statement by statement, so that each snapshot is built
    # while the catalog it is compared with is still there: a rerun in one message
    # (``send_rerun``) is rolled back before its rows are read (test_send_ahead.py holds its
    # verdicts to the statement path's).
    monkeypatch.setattr(replay_module._Session, "send_rerun", lambda *args, **kwargs: False)
    walks: list[str | None] = []
    original_walk = replay_module._lock_walk_needed

    def recorded(*args: Any) -> Any:
        walks.append(original_walk(*args))
        return walks[-1]

    monkeypatch.setattr(replay_module, "_lock_walk_needed", recorded)
    root = write_tree(tmp_path, {name: "\n".join(line.strip() for line in text.splitlines())
                                 for name, text in _MIGRATIONS.items()})
    result = replay(fresh, root)
    statuses = [(m.path.rsplit("/", 1)[-1], m.status, m.error) for m in result.migrations]
    assert all(status == "applied" for _, status, _ in statuses), statuses
    # Observed migrations and the idempotency checks took snapshots from locks; the renames
    # of names other objects show, the composite type and the catalog write fell back.
    assert len(compared) >= 10, (compared, fallbacks)
    # Renames of a function and an enum value read everything; those of tables, columns,
    # constraints and indexes their relations' dependents; the composite type and the
    # catalog write fall back too.
    assert len(fallbacks) >= 5, (compared, fallbacks)
    assert walks.count("relations") >= 4 and walks.count("all") >= 2, walks
    by_name = {m.path.rsplit("/", 1)[-1]: m for m in result.migrations}
    assert "column public.t.w" in by_name["002_rename_column.sql"].catalog.created
    assert "constraint public.t.t_parent" in by_name["013_constraint_index_rename.sql"].catalog.created
    altered = by_name["004_enum_add.sql"].catalog.altered
    assert "type public.mood" in altered
