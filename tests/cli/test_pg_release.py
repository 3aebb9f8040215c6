"""The target given as a release (`--pg-version 14.3`): parsed, kept apart from the major,
and used where the minor release matters (LK024, the Docker image)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe.api import _prepare_dry_run
from sqlsafe.cli import cli
from sqlsafe.config import Config, ConfigError, from_mapping, parse_pg_version

CIC = "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n"


@pytest.mark.parametrize(("given", "expected"), [
    (15, (15, None)), ("15", (15, None)), ("14.3", (14, 3)), (" 14.10 ", (14, 10)),
    ("9.6", (9, None)),  # before 10 the second number is part of the major
])
def test_versions_parse(given: object, expected: tuple[int, int | None]) -> None:
    assert parse_pg_version(given) == expected


@pytest.mark.parametrize("given", ["14.x", "fourteen", "14.3.1", "", True, 14.3, "8.4", 99])
def test_bad_versions_are_config_errors(given: object) -> None:
    with pytest.raises(ConfigError, match=r"pg_version|PostgreSQL"):
        parse_pg_version(given, "pyproject.toml")


def test_config_file_release_sets_major_and_minor() -> None:
    cfg = from_mapping({"pg-version": "14.2"}, "pyproject.toml")
    assert (cfg.pg_version, cfg.pg_minor) == (14, 2)
    with pytest.raises(ConfigError, match="unknown key 'pg_minor'"):
        from_mapping({"pg_minor": 2}, "pyproject.toml")  # not a setting of its own


def _lint(tmp_path: Path, *args: str) -> tuple[int, set[str], str]:
    (tmp_path / "001_orders.sql").write_text(
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n", encoding="utf-8")
    (tmp_path / "002_index.sql").write_text(CIC, encoding="utf-8")
    result = CliRunner().invoke(cli, ["lint", "--format", "json", "--select", "LK024",
                                      str(tmp_path), *args])
    codes = set()
    if result.exit_code in (0, 1):
        codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    return result.exit_code, codes, result.stderr


def test_lk024_needs_the_release(tmp_path: Path) -> None:
    assert _lint(tmp_path, "--pg-version", "14.3")[:2] == (1, {"LK024"})
    assert _lint(tmp_path, "--pg-version", "14.4")[:2] == (0, set())
    assert _lint(tmp_path, "--pg-version", "14")[:2] == (0, set())  # release unknown
    assert _lint(tmp_path, "--pg-version", "15.1")[:2] == (0, set())


def test_command_line_version_replaces_the_files_release(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sqlsafe]\npg_version = "14.1"\n',
                                             encoding="utf-8")
    assert _lint(tmp_path)[:2] == (1, {"LK024"})
    # A bare major on the command line drops the file's 14.1, it does not keep it.
    assert _lint(tmp_path, "--pg-version", "14")[:2] == (0, set())


def test_bad_release_on_the_command_line_is_exit_2(tmp_path: Path) -> None:
    code, _, err = _lint(tmp_path, "--pg-version", "14.x")
    assert code == 2
    assert "14.x" in err and "Traceback" not in err


def test_docker_image_follows_the_release(tmp_path: Path) -> None:
    (tmp_path / "001.sql").write_text("SELECT 1;\n", encoding="utf-8")
    paths = (str(tmp_path),)
    prep = _prepare_dry_run(paths, Config(pg_version=14, pg_minor=3), 0, None, "docker", None)
    assert (prep.pg_version, prep.image) == (14, "postgres:14.3")
    prep = _prepare_dry_run(paths, Config(pg_version=16), 0, None, "docker", None)
    assert (prep.pg_version, prep.image) == (16, None)  # the sandbox picks postgres:16
    prep = _prepare_dry_run(paths, Config(pg_version=14, pg_minor=3), 0, None, "docker",
                            "mirror.local/postgres:14")
    assert prep.image == "mirror.local/postgres:14"  # --image wins


def test_a_release_survives_the_version_matrix_for_its_major() -> None:
    from sqlsafe.api import for_version

    cfg = Config(pg_version=14, pg_minor=3)
    assert (for_version(cfg, 14).pg_version, for_version(cfg, 14).pg_minor) == (14, 3)
    assert (for_version(cfg, 18).pg_version, for_version(cfg, 18).pg_minor) == (18, None)
    assert for_version(Config(), 16).pg_version_given is True
