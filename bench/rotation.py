"""Key rotation at scale: `rotate_encryption_keys` over 100,000 stored keys on PostgreSQL.

Seeds N workspaces and N keys encrypted under an "old" ring entry (COPY of pre-encrypted
values, each bound to its row's associated data), then runs the real command as a child
process with the ring "new,old" and reports, per run, wall time, rows per second and the
child's peak RSS (from wait4):

- the rotation itself (every row rewritten, one audit event per row);
- `--verify` (decrypts every row; the read-only pass the rotation is compared with);
- a second rotation (must rewrite nothing; its RSS is the command's floor: Django started,
  nothing to do).

Targets: rotation under 60 s and under 200 MB peak RSS.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/rotation.py [--rows 100000] [--batch-size 500]

The script creates (and at the end drops) its own database, byok_bench_rotation, on the
server of DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_READ_DOT_ENV", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret-key-not-for-production")

import django  # noqa: E402

django.setup()

from llm_keys.crypto import KeyRing, generate_entry  # noqa: E402
from llm_keys.models import associated_data_for  # noqa: E402

DB_NAME = "byok_bench_rotation"


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(base_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database(base_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def child_env(url: str, ring: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_READ_DOT_ENV": "false",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "DATABASE_URL": url,
        "LLM_KEY_ENCRYPTION_KEYS": ring,
    }


def run(args: list[str], env: dict) -> tuple[float, int, int, str]:
    """Run manage.py; return (seconds, peak RSS in bytes, exit status, output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss * 1024, proc.returncode, output


def seed(url: str, rows: int, old_entry: str) -> float:
    import psycopg

    ring = KeyRing.parse(old_entry)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY workspaces_workspace (name, slug, created_at) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((f"Bench {i}", f"bench-{i}", "2025-01-01T00:00:00Z"))
            cur.execute("SELECT id FROM workspaces_workspace WHERE slug LIKE 'bench-%' ORDER BY id")
            ids = [row[0] for row in cur.fetchall()]
            columns = (
                "workspace_id, provider, ciphertext, encryption_key_id, hint, status, "
                "status_reason, last_error, created_at, updated_at"
            )
            with cur.copy(f"COPY llm_keys_llmkey ({columns}) FROM STDIN") as copy:
                for workspace_id in ids:
                    raw = f"sk-ant-api03-bench{workspace_id:012d}xxxxxxxxxxxxxxxxxxxxxxxx"
                    sealed = ring.encrypt(raw, associated_data_for(workspace_id, "anthropic"))
                    copy.write_row(
                        (
                            workspace_id,
                            "anthropic",
                            sealed.ciphertext,
                            sealed.key_id,
                            raw[-4:],
                            "valid",
                            "",
                            "",
                            "2025-01-01T00:00:00Z",
                            "2025-01-01T00:00:00Z",
                        )
                    )
        conn.commit()
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def count_by_key_id(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT encryption_key_id, count(*) FROM llm_keys_llmkey GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return dict(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="Keep the bench database.")
    options = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL server (any database on it).", file=sys.stderr)
        return 2
    url = database_url(base, DB_NAME)
    old, new = generate_entry("old"), generate_entry("new")
    recreate_database(base)
    try:
        migrated = run(["migrate", "--no-input", "-v0"], child_env(url, old))
        if migrated[2] != 0:
            print(migrated[3], file=sys.stderr)
            return 1
        seconds = seed(url, options.rows, old)
        print(f"Seeded {options.rows:,} keys under 'old' in {seconds:.1f} s (COPY).")
        print(f"Before: {count_by_key_id(url)}")
        env = child_env(url, f"{new},{old}")
        batch = ["--batch-size", str(options.batch_size)]
        results = {}
        for label, args in (
            ("verify (before)", ["rotate_encryption_keys", "--verify", *batch]),
            ("rotate", ["rotate_encryption_keys", *batch]),
            ("rotate again", ["rotate_encryption_keys", *batch]),
            ("verify (after)", ["rotate_encryption_keys", "--verify", *batch]),
        ):
            elapsed, rss, status, output = run(args, env)
            results[label] = (elapsed, rss, status)
            last = output.strip().splitlines()[-1] if output.strip() else ""
            print(
                f"{label:16} {elapsed:6.2f} s  {options.rows / elapsed:9,.0f} rows/s  "
                f"peak RSS {rss / 2**20:6.1f} MB  exit {status}  | {last}"
            )
        print(f"After: {count_by_key_id(url)}")
        rotate_s, rotate_rss, rotate_status = results["rotate"]
        verify_s = results["verify (after)"][0]
        floor_rss = results["rotate again"][1]
        print()
        print(
            f"rotation: {rotate_s:.1f} s for {options.rows:,} keys "
            f"({options.rows / rotate_s:,.0f} rows/s), {rotate_s / verify_s:.1f}x the "
            f"decrypt-only --verify pass; peak RSS {rotate_rss / 2**20:.0f} MB "
            f"({(rotate_rss - floor_rss) / 2**20:+.0f} MB over the idle command's "
            f"{floor_rss / 2**20:.0f} MB)."
        )
        ok = (
            rotate_status == 0
            and results["verify (before)"][2] != 0
            and results["verify (after)"][2] == 0
            and "Re-encrypted 0 keys" in run(["rotate_encryption_keys"], env)[3]
        )
        targets = rotate_s < 60 and rotate_rss < 200 * 2**20
        print(
            f"targets (< 60 s, < 200 MB): {'met' if targets else 'MISSED'}; "
            f"behaviour (verify fails before, passes after, rerun idle): "
            f"{'ok' if ok else 'WRONG'}"
        )
        return 0 if ok and targets else 1
    finally:
        if not options.keep:
            drop_database(base)


if __name__ == "__main__":
    sys.exit(main())
