"""Discovery's path shortcuts give what the plain os.path calls would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sqlsafe.discover import _Acc, _realpath, _walk, discover


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
        assert _realpath(p, cache, set()) == os.path.realpath(p), p


def test_walk_knows_which_files_are_not_links(linked: Path) -> None:
    acc = _Acc()
    _walk(str(linked), str(linked), acc)
    assert acc.not_links == {str(linked / "real" / "001_a.sql"),
                             str(linked / "real" / "002_b.sql")}
    # What the listing said spares the lstat, and the answers stay os.path.realpath's.
    cache: dict[str, str] = {}
    for p in sorted(acc.not_links) + [str(linked / "real" / "003_c.sql")]:
        assert _realpath(p, cache, acc.not_links) == os.path.realpath(p), p


def _os_walk_reference(root: str) -> list[tuple[str, list[str]]]:
    """The order and the files discovery found with os.walk (before it listed directories
    with scandir itself)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "node_modules")
        files = [f for f in sorted(filenames) if not f.startswith(".")
                 and f.lower().endswith(".sql") and os.path.isfile(os.path.join(dirpath, f))]
        if files:
            out.append((os.path.abspath(dirpath), files))
    return out


def test_walk_visits_what_os_walk_does(tmp_path: Path) -> None:
    for d in ["b/2", "b/1/x", "a", ".git/m", "node_modules/p", "c.sql", "B"]:
        (tmp_path / d).mkdir(parents=True)
    for f in ["b/2/002.sql", "b/1/x/001.SQL", "a/003.sql", "a/.hidden.sql", "a/notes.txt",
              ".git/m/004.sql", "node_modules/p/005.sql", "B/006.sql", "007.sql", "b/008.sql"]:
        (tmp_path / f).write_text("SELECT 1;\n")
    (tmp_path / "linkdir").symlink_to("a")  # listed, not entered
    (tmp_path / "a" / "009.sql").symlink_to("003.sql")  # a symlinked file is read
    found = _walk(str(tmp_path), str(tmp_path), _Acc())
    walked = [(d, [s.name for s in srcs]) for d, (_display, srcs) in found.items()]
    assert walked == _os_walk_reference(str(tmp_path))


def test_same_file_through_links_listed_once(linked: Path) -> None:
    result = discover([str(linked / "real"), str(linked / "alias")])
    assert [os.path.basename(m.path) for m in result.migrations] == ["001_a.sql", "002_b.sql"]
    assert sum("given more than once" in n for n in result.notes) == 4  # 003_c, and all three via alias


def test_only_regular_files_are_read(linked: Path) -> None:
    result = discover([str(linked)])
    assert result.problems == ()
    assert all(os.path.isfile(m.abspath or "") for m in result.migrations)
    assert not any("dangling" in m.path or "005_dir" in m.path for m in result.migrations)
