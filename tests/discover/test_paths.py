"""Discovery's path shortcuts give what the plain os.path calls would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sqlsafe.discover import _realpath, discover


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    (tmp_path / "real" / "002_b.sql").write_text("CREATE TABLE b (id int);\n")
    (tmp_path / "alias").symlink_to("real")  # a symlinked directory
    (tmp_path / "real" / "003_c.sql").symlink_to("001_a.sql")  # a symlinked file
    (tmp_path / "004_dangling.sql").symlink_to("nowhere.sql")
    (tmp_path / "005_dir.sql").mkdir()  # a directory named like a migration
    return tmp_path


def test_realpath_matches_os_realpath(linked: Path) -> None:
    cache: dict[str, str] = {}
    paths = [str(linked / "alias" / "001_a.sql"), str(linked / "real" / "003_c.sql"),
             str(linked / "004_dangling.sql"), str(linked / "missing" / "x.sql"),
             str(linked / "alias"), str(linked), "/", "relative.sql"]
    for p in paths + paths:  # the second round answers from the cache
        assert _realpath(p, cache) == os.path.realpath(p), p


def test_same_file_through_links_listed_once(linked: Path) -> None:
    result = discover([str(linked / "real"), str(linked / "alias")])
    assert [os.path.basename(m.path) for m in result.migrations] == ["001_a.sql", "002_b.sql"]
    assert sum("given more than once" in n for n in result.notes) == 4  # 003_c, and all three via alias


def test_only_regular_files_are_read(linked: Path) -> None:
    result = discover([str(linked)])
    assert result.problems == ()
    assert all(os.path.isfile(m.abspath or "") for m in result.migrations)
    assert not any("dangling" in m.path or "005_dir" in m.path for m in result.migrations)
