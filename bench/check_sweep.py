"""Benchmark the periodic key sweep: a real Celery worker on Redis and PostgreSQL checks
every stored key against the stand-in, which answers each probe after a fixed latency.

Prints the sweep's wall time against the ideal ``keys x latency / concurrency`` (target:
at most 1.3x the ideal) and the highest request rate the stand-in saw against
``LLM_KEY_CHECK_RATE_PER_MINUTE`` (it must never be above). A second, smaller sweep runs
with a limit low enough to bind, to show the limit holding when it is the bottleneck.

    .venv/bin/python bench/check_sweep.py [--keys 2000] [--latency 0.1] [--concurrency 20]

The worker is started as README says production runs it: ``celery -A config worker
--without-gossip --without-mingle`` (prefork), with ``CELERY_WORKER_CONCURRENCY`` set to the
concurrency and the project's settings otherwise (prefetch, broker transport, connection reuse).

Needs PostgreSQL and Redis; it uses (and empties) the database of BENCH_DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/byok_bench_sweep, created if missing) and Redis
db 5 (BENCH_BROKER_URL).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/byok_bench_sweep"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5")


def _setup_django() -> None:
    from llm_keys.crypto import generate_entry

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_READ_DOT_ENV="false",
        DJANGO_SECRET_KEY="bench-only",
        LLM_KEY_ENCRYPTION_KEYS=generate_entry("bench"),
        DATABASE_URL=DATABASE_URL,
        CELERY_BROKER_URL=BROKER_URL,
        LOG_LEVEL="WARNING",
    )
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _store_keys(count: int) -> None:
    from llm_keys.crypto import get_key_ring
    from llm_keys.models import KeyStatus, LLMKey, associated_data_for
    from tests.factories import fake_key
    from workspaces.models import Workspace

    LLMKey.objects.all().delete()
    Workspace.objects.filter(slug__startswith="bench-").delete()
    workspaces = Workspace.objects.bulk_create(
        Workspace(name=f"Bench {n}", slug=f"bench-{n}") for n in range(count)
    )
    ring = get_key_ring()
    rows = []
    for workspace in workspaces:
        raw = fake_key()
        sealed = ring.encrypt(raw, associated_data_for(workspace.pk, "anthropic"))
        rows.append(
            LLMKey(
                workspace=workspace,
                provider="anthropic",
                ciphertext=sealed.ciphertext,
                encryption_key_id=sealed.key_id,
                hint=raw[-4:],
                status=KeyStatus.VALID,
            )
        )
    LLMKey.objects.bulk_create(rows, batch_size=500)


def _start_worker(*, standin_url: str, concurrency: int, per_minute: int, log: Path):
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": standin_url,
        "LLM_KEY_CHECK_RATE_PER_MINUTE": str(per_minute),
        "CELERY_WORKER_CONCURRENCY": str(concurrency),
        "AI_HTTP_POOL_SIZE": "4",
    }
    out = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"bench-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"worker exited:\n{log.read_text()[-2000:]}")
        if app.control.ping(timeout=0.5):
            return process
    raise SystemExit("worker did not start within 60 s")


def _stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def _cpu_seconds_by_group(worker_pid: int) -> dict[str, float]:
    """CPU seconds used so far by each group of processes on this machine (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    groups: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        name, fields = stat.split("(", 1)[1].rsplit(")", 1)
        fields = fields.split()
        if int(pid) == os.getpid():
            group = "bench (stand-in, progress query)"
        elif int(pid) == worker_pid:
            group = "worker main process"
        elif "celery" in cmdline:
            group = "worker pool"
        elif name.startswith("postgres"):
            group = "postgres"
        elif name.startswith("redis"):
            group = "redis"
        else:
            group = "other"
        groups[group] = groups.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return groups


def _sweep(count: int) -> float:
    from django.utils import timezone

    from config.celery import app
    from llm_keys.models import LLMKey

    started_at = timezone.now()
    start = time.monotonic()
    app.send_task("llm_keys.tasks.llm_keys_check_all")
    deadline = start + max(120, count)
    while time.monotonic() < deadline:
        if LLMKey.objects.filter(last_checked_at__gte=started_at).count() >= count:
            return time.monotonic() - start
        time.sleep(0.1)
    raise SystemExit("the sweep did not finish in time")


def _rates(standin) -> dict[str, float]:
    from tests.windows import max_in_window

    times = sorted(r.at for r in standin.requests if r.path.startswith("/v1/models"))
    return {
        "in any 60 s window": max_in_window(times, 60.0),
        "peak 10 s window x 6": max_in_window(times, 10.0) * 6,
        "peak 1 s window x 60": max_in_window(times, 1.0) * 60,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=int,
        default=15000,
        help="LLM_KEY_CHECK_RATE_PER_MINUTE for the main sweep (above the ideal rate).",
    )
    parser.add_argument("--binding-keys", type=int, default=500)
    parser.add_argument("--binding-rate", type=int, default=3000)
    args = parser.parse_args()

    _setup_django()
    import redis

    from tests.anthropic_standin import StandIn

    redis.Redis.from_url(BROKER_URL).flushdb()
    standin = StandIn(latency=args.latency).start()
    log = ROOT / "var" / "bench-worker.log"
    log.parent.mkdir(exist_ok=True)
    failed = False
    from llm_keys.ratelimit import SCHEDULE_SHARE

    try:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        for label, keys, rate, latency in (
            ("main sweep", args.keys, args.rate, args.latency),
            # The same sweep with an instant provider: what this machine's CPUs alone allow.
            ("baseline, provider answers at once", args.keys, args.rate, 0.0),
            ("rate-bound sweep", args.binding_keys, args.binding_rate, args.latency),
        ):
            _store_keys(keys)
            worker = _start_worker(
                standin_url=standin.url, concurrency=args.concurrency, per_minute=rate, log=log
            )
            try:
                standin.reset()
                standin.state.latency = latency
                cpu_before = _cpu_seconds_by_group(worker.pid)
                wall = _sweep(keys)
                cpu_after = _cpu_seconds_by_group(worker.pid)
            finally:
                _stop(worker)
            # Where the machine's CPU went: with 2 cores, the sweep cannot be shorter than
            # the total / 2, whatever the latency.
            used = {g: cpu_after[g] - cpu_before.get(g, 0.0) for g in cpu_after}
            total = sum(used.values())
            split = ", ".join(
                f"{g} {v * 1000 / keys:.1f}" for g, v in sorted(used.items(), key=lambda i: -i[1])
            )
            print(f"\nCPU per check (ms): {split}; total {total * 1000 / keys:.1f} ms", end="")
            print(
                f" -> {total / (os.cpu_count() or 1):.1f} s of wall time on {os.cpu_count()} CPUs"
            )
            if latency == 0:
                baseline = wall
                print(f"\n== {label}: {keys} keys: {wall:.2f} s (CPU-bound floor on this machine)")
                continue
            ideal = keys * latency / args.concurrency
            # The limit alone needs this long: permits are spaced for SCHEDULE_SHARE of it.
            floor = keys * 60 / (rate * SCHEDULE_SHARE)
            probes = sum(1 for r in standin.requests if r.path.startswith("/v1/models"))
            print(f"\n== {label}: {keys} keys, {latency * 1000:.0f} ms per probe, ", end="")
            print(f"concurrency {args.concurrency}, LLM_KEY_CHECK_RATE_PER_MINUTE={rate} ==")
            print(f"probes seen by the stand-in: {probes}")
            print(f"wall time: {wall:.2f} s")
            print(f"ideal keys x latency / concurrency: {ideal:.2f} s  → {wall / ideal:.2f}x")
            if floor > ideal:
                print(
                    f"rate-limit floor keys x 60 / ({SCHEDULE_SHARE} x rate): {floor:.2f} s"
                    f"  → {wall / floor:.2f}x"
                )
            for name, value in _rates(standin).items():
                verdict = "ok" if value <= rate else "ABOVE THE LIMIT"
                print(f"highest rate, {name}: {value:.0f}/min  vs limit {rate}/min  {verdict}")
                failed |= value > rate and name == "in any 60 s window"
            if label == "main sweep":
                main_wall, main_ideal = wall, ideal
        print(
            f"\nmain sweep {main_wall:.2f} s = {main_wall / main_ideal:.2f}x the ideal "
            f"{main_ideal:.2f} s (target <= 1.3x); zero-latency baseline {baseline:.2f} s, "
            f"so max(ideal, baseline) = {max(main_ideal, baseline):.2f} s "
            f"-> {main_wall / max(main_ideal, baseline):.2f}x"
        )
        if main_wall / main_ideal > 1.3:
            print("target missed: more than 1.3x the ideal")
            failed = True
    finally:
        standin.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
