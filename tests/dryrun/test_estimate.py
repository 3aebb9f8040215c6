"""Runtime estimates: the fit on synthetic timings (no server), stats input, risk levels, and
one small measured replay on a real server."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sqlsafe.dryrun.estimate import (
    Fit,
    TableStats,
    estimate,
    fit,
    load_stats_file,
    measure,
    parse_rows_option,
    risk_level,
)
from sqlsafe.dryrun.sandbox import open_sandbox
from sqlsafe.model import Migration, Section


def test_linear_timings_fit_linear_and_extrapolate() -> None:
    points = [(n, 2.0 + 0.001 * n) for n in (1_000, 10_000, 100_000)]
    f = fit(points)
    assert f.model == "linear"
    assert f.at(1_000_000) == pytest.approx(1_002.0)


def test_n_log_n_timings_pick_n_log_n_by_residual() -> None:
    points = [(n, 1.0 + 1e-5 * n * math.log2(n)) for n in (1_000, 10_000, 100_000, 400_000)]
    f = fit(points, prefer="linear")
    assert f.model == "n log n"
    assert f.at(4_000_000) == pytest.approx(1.0 + 1e-5 * 4e6 * math.log2(4e6), rel=1e-6)


def test_two_sizes_fit_both_exactly_and_the_kind_decides() -> None:
    points = [(1_000, 3.0), (10_000, 21.0)]
    assert fit(points).model == "linear"
    assert fit(points, prefer="n log n").model == "n log n"
    assert fit(points).at(10_000) == pytest.approx(21.0)


def test_time_that_does_not_grow_is_constant_not_a_noisy_slope() -> None:
    # Catalog-only DDL: 0.3 ms then 0.45 ms is noise, not 0.017 µs per row.
    f = fit([(1_000, 0.30), (10_000, 0.45)])
    assert (f.model, f.b) == ("constant", 0.0) and f.at(10**9) == pytest.approx(0.45)
    assert fit([(1_000, 9.0), (10_000, 5.0), (100_000, 30.0)]).b >= 0
    assert Fit("linear", -5.0, 0.0).at(1) == 0.0


def test_rows_option_and_stats_files(tmp_path: Path) -> None:
    assert parse_rows_option("orders=5M, app.users=120_000,t=1e3") == {
        "public.orders": TableStats(5_000_000, None, "--rows"),
        "app.users": TableStats(120_000, None, "--rows"),
        "public.t": TableStats(1_000, None, "--rows"),
    }
    with pytest.raises(ValueError):
        parse_rows_option("orders")
    csv_file = tmp_path / "stats.csv"
    csv_file.write_text("nspname,relname,reltuples,pg_total_relation_size\n"
                        "public,orders,4200000,900000000\npublic,fresh,-1,8192\n")
    assert load_stats_file(str(csv_file)) == {
        "public.orders": TableStats(4_200_000, 900_000_000, "stats file stats.csv"),
        "public.fresh": TableStats(None, 8192, "stats file stats.csv"),
    }
    json_file = tmp_path / "stats.json"
    json_file.write_text(json.dumps([{"nspname": "public", "relname": "orders",
                                      "reltuples": 10, "pg_total_relation_size": 1}]))
    assert load_stats_file(str(json_file))["public.orders"].rows == 10


def test_risk_level_weighs_lock_mode_by_time() -> None:
    rewrite = "AccessExclusiveLock"
    assert risk_level({"lock_hold_ms": 180_000.0}, rewrite) == "high"  # minutes, big table
    assert risk_level({"lock_hold_ms": 3.0}, rewrite) == "low"  # same rewrite, 100 rows
    assert risk_level({"lock_hold_ms": 5_000.0}, "ShareLock") == "medium"  # writes wait
    assert risk_level({"lock_hold_ms": 600_000.0}, "ShareUpdateExclusiveLock") == "low"
    assert risk_level(None, rewrite) == "medium"  # size unknown


@pytest.mark.postgres
def test_measured_replay_gives_estimates_with_their_basis() -> None:
    text = ("ALTER TABLE orders ALTER COLUMN qty TYPE bigint;\n"
            "CREATE TABLE notes (id int);\n")
    migration = Migration("001.sql", None, "plain", None, "001", Section("001.sql", text),
                          in_transaction=True)
    with open_sandbox("embedded") as sb:
        with sb.connect() as conn:
            conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, qty int NOT NULL)")
        # Sizes far enough apart that the rewrite's growth dwarfs timing noise on a busy machine.
        measured = measure(sb, [migration], sizes=(1_000, 40_000), repeat=1)
    (items,) = estimate(measured, {"public.orders": TableStats(2_000_000)}).values()
    alter, create = items
    assert (alter["relation"], alter["rows"], alter["rows_source"]) == (
        "public.orders", 2_000_000, "stats")
    assert [m["rows"] for m in alter["measured"]] == [1_000, 40_000]
    assert alter["fit"]["model"] in ("linear", "n log n")
    assert alter["estimated_ms"] > max(m["ms"] for m in alter["measured"])
    # One transaction: the ALTER's lock is held through the CREATE until COMMIT.
    assert alter["lock_hold_ms"] == pytest.approx(alter["estimated_ms"] + create["estimated_ms"],
                                                  abs=0.2)
    assert alter["relation_bytes"] > 2_000_000 * 8
    # CREATE TABLE does not grow with rows; whatever noise fitted, it is cheap in production.
    assert create["estimated_ms"] < alter["estimated_ms"]
    assert create["rows_source"] == "created by this change set: empty in production"
