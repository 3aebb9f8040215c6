"""``sqlsafe checksum --verify --flyway-history FILE``: the scripts against Flyway's schema
history, as ``flyway validate`` judges them, with the edit told cosmetic or semantic.

The expected checksums are worked out here from Flyway's definition (CRC-32 over each line's
UTF-8 bytes, line breaks left out, a BOM dropped, as a signed 32-bit integer), not with
sqlsafe's code.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlsafe import flywaysum
from sqlsafe.cli import cli


def _expected(data: bytes) -> int:
    text = data.decode("utf-8")
    text = text[1:] if text.startswith("\ufeff") else text
    crc = 0
    for line in re.split(r"\r\n|\r|\n", text):
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - 2**32 if crc >= 2**31 else crc


SCRIPTS = {
    "V1__create_users.sql": b"CREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    "V2__add_name.sql": "-- café\nALTER TABLE users ADD COLUMN name text;\n".encode(),
    "V3__index.sql": b"CREATE INDEX users_email ON users (email);\n",
}


def test_checksum_is_flyways() -> None:
    for data in [*SCRIPTS.values(), b"", b"a", b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r",
                 "SELECT 'ü';\n\n\n".encode()]:
        assert flywaysum.checksum(data) == _expected(data)
    # Line endings and a BOM do not count; the lines themselves do.
    assert flywaysum.checksum(b"a\r\nb\r\n") == flywaysum.checksum(b"\xef\xbb\xbfa\nb\n")
    assert flywaysum.checksum(b"a\nb\n") != flywaysum.checksum(b"a b\n")


def _project(tmp_path: Path, applied: list[str]) -> tuple[Path, Path]:
    root = tmp_path / "sql"
    root.mkdir()
    for name, data in SCRIPTS.items():
        (root / name).write_bytes(data)
    if shutil.which("git"):
        for args in (["init", "-q"], ["add", "."],
                     ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm",
                      "applied"]):
            subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    history = tmp_path / "history.csv"
    lines = ["version,script,checksum,success", "1,<< Flyway Baseline >>,,t"]
    for name in applied:
        version = name[1:].split("__")[0]
        lines.append(f"{version},{name},{_expected(SCRIPTS[name])},t")
    history.write_text("\n".join(lines) + "\n")
    return root, history


def _verify(root: Path, history: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["checksum", "--verify", "--flyway-history", str(history),
                                      str(root)])
    return result.exit_code, result.output.splitlines()


def test_applied_scripts_that_match_pass(tmp_path: Path) -> None:
    root, history = _project(tmp_path, ["V1__create_users.sql", "V2__add_name.sql"])
    code, out = _verify(root, history)
    assert code == 0, out
    assert out[-1].endswith("2 applied script(s) match, 1 pending")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_edits_are_told_cosmetic_or_semantic(tmp_path: Path) -> None:
    root, history = _project(tmp_path, ["V1__create_users.sql", "V2__add_name.sql"])
    (root / "V1__create_users.sql").write_bytes(
        b"-- reviewed\r\nCREATE TABLE users (id bigint PRIMARY KEY,  email text);\r\n")
    (root / "V2__add_name.sql").write_bytes(b"ALTER TABLE users ADD COLUMN name varchar(80);\n")
    code, out = _verify(root, history)
    assert code == 1
    v1 = next(line for line in out if "V1__create_users.sql: modified" in line)
    v2 = next(line for line in out if "V2__add_name.sql: modified" in line)
    assert "cosmetic edit" in v1 and str(_expected(SCRIPTS["V1__create_users.sql"])) in v1
    assert "semantic edit" in v2


def test_removed_out_of_order_and_failed(tmp_path: Path) -> None:
    root, history = _project(tmp_path, ["V1__create_users.sql", "V3__index.sql"])
    (root / "V1__create_users.sql").unlink()
    with history.open("a") as f:
        f.write("4,V4__broken.sql,123,f\n")
    code, out = _verify(root, history)
    assert code == 1
    assert any("V1__create_users.sql: removed" in line for line in out), out
    # V2 is new, but below the applied V3: Flyway skips or refuses it.
    assert any("V2__add_name.sql: out-of-order" in line and "(3)" in line for line in out), out
    assert any("V4__broken.sql: failed" in line and "repair" in line for line in out), out


def test_json_history_and_bad_input(tmp_path: Path) -> None:
    root, _ = _project(tmp_path, [])
    history = tmp_path / "history.json"
    history.write_text(json.dumps([
        {"version": "1", "script": "V1__create_users.sql",
         "checksum": _expected(SCRIPTS["V1__create_users.sql"]), "success": True},
        {"version": None, "script": "R__views.sql", "checksum": 5, "success": True},
    ]))
    code, out = _verify(root, history)
    assert code == 0, out
    runner = CliRunner()
    assert runner.invoke(cli, ["checksum", "--flyway-history", str(history),
                               str(root)]).exit_code == 2  # needs --verify
    bad = tmp_path / "bad.csv"
    bad.write_text("version,script\n1,V1__create_users.sql\n")
    result = runner.invoke(cli, ["checksum", "--verify", "--flyway-history", str(bad), str(root)])
    assert result.exit_code == 2 and "lacks script or checksum" in result.output
