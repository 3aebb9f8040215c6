"""Start-up time of the disposable servers: cold (template cluster built) and warm (copied).

Run: python bench/bench_sandbox.py [--engine embedded|local ...] [--runs N]
Cold runs point SQLSAFE_CACHE_DIR at an empty temp dir, so the real cache is left alone.
Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlsafe.dryrun.sandbox import SandboxError, open_sandbox


def _one_run(engine: str, pg_version: int | None) -> tuple[float, float, str]:
    """Seconds until the scratch database answers, seconds to clean up, server version."""
    started = time.perf_counter()
    with open_sandbox(engine, pg_version=pg_version) as sandbox:
        with sandbox.connect() as conn:
            conn.execute("SELECT 1")
        ready = time.perf_counter()
    return ready - started, time.perf_counter() - ready, sandbox.server_version


def _bench(engine: str, pg_version: int | None, runs: int) -> None:
    cache = Path(tempfile.mkdtemp(prefix="sqlsafe-bench-cache-", dir="/var/tmp"))
    os.chmod(cache, 0o755)  # as root, the server account must reach the cache
    previous = os.environ.get("SQLSAFE_CACHE_DIR")
    os.environ["SQLSAFE_CACHE_DIR"] = str(cache)
    try:
        cold, cold_stop, version = _one_run(engine, pg_version)
        warm = [_one_run(engine, pg_version) for _ in range(runs)]
    except SandboxError as exc:
        print(f"{engine:9} skipped: {exc}")
        return
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if previous is None:
            os.environ.pop("SQLSAFE_CACHE_DIR", None)
        else:
            os.environ["SQLSAFE_CACHE_DIR"] = previous
    starts = [w[0] for w in warm]
    stops = [w[1] for w in warm]
    print(
        f"{engine:9} PostgreSQL {version:6} cold {cold:5.2f}s (stop {cold_stop:.2f}s)   "
        f"warm median {statistics.median(starts):5.2f}s  min {min(starts):5.2f}s  "
        f"max {max(starts):5.2f}s (stop {statistics.median(stops):.2f}s, {runs} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", action="append", choices=["embedded", "local"])
    parser.add_argument("--pg-version", type=int, default=None, help="for --engine local")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for engine in args.engine or ["embedded", "local"]:
        _bench(engine, args.pg_version if engine == "local" else None, args.runs)


if __name__ == "__main__":
    main()
