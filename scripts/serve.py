"""Run the production web server alone: uvicorn on config.asgi, WEB_CONCURRENCY processes.

Configured from the environment only (no .env). Refuses to start, with one line saying why,
when the production settings do not pass Django's system checks (an empty or malformed
LLM_KEY_ENCRYPTION_KEYS, no DJANGO_SECRET_KEY, ...).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _refusal() -> str | None:
    """The first serious system-check message of the production settings, or None."""
    import django
    from django.core import checks
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
        messages = checks.run_checks(include_deployment_checks=False)
    except ImproperlyConfigured as exc:
        return str(exc)
    serious = [m for m in messages if m.is_serious()]
    if not serious:
        return None
    first = serious[0]
    hint = f" ({first.hint})" if first.hint else ""
    return f"{first.id}: {first.msg}{hint}".replace("\n", " ")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_READ_DOT_ENV"] = "false"
    refusal = _refusal()
    if refusal:
        print(f"make serve: refusing to start: {refusal}", file=sys.stderr)
        return 2

    # The checks loaded Django into this process; the server's supervisor needs none of it
    # (its workers import the app themselves), so it starts afresh, ~110 MB lighter.
    env = os.environ
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        f"--host={env.get('HOST', '127.0.0.1')}",
        f"--port={env.get('PORT', '8000')}",
        f"--workers={env.get('WEB_CONCURRENCY', str(os.cpu_count() or 1))}",
        # Django has no lifespan handlers; saying so spares uvicorn a probe per worker.
        "--lifespan=off",
        f"--log-level={env.get('UVICORN_LOG_LEVEL', 'info')}",
        f"--timeout-graceful-shutdown={env.get('WEB_GRACEFUL_TIMEOUT', '30')}",
        f"--forwarded-allow-ips={env.get('FORWARDED_ALLOW_IPS', '127.0.0.1')}",
        "--access-log"
        if env.get("UVICORN_ACCESS_LOG", "false").lower() == "true"
        else "--no-access-log",
        "--proxy-headers"
        if env.get("DJANGO_BEHIND_TLS_PROXY", "false").lower() == "true"
        else "--no-proxy-headers",
    ]
    os.chdir(ROOT)
    os.execv(sys.executable, command)  # noqa: S606 - our own interpreter, fixed arguments
    return 0


if __name__ == "__main__":
    sys.exit(main())
