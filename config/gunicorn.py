"""``make serve``'s web server: gunicorn managing uvicorn workers (decision 092).

Read by gunicorn (``--config python:config.gunicorn``) from the environment only. The master
process imports the application once (``preload_app``) and forks the workers from it, so
Django, the Anthropic SDK and the project's code are in memory once, shared by every worker,
instead of once per worker (two workers at 500 open streams: 254 MB instead of 326 MB of
PSS). Python's collector would undo that sharing by writing to every object it scans; the
objects loaded before the fork are frozen out of its reach (``gc.freeze``, as the ``gc``
module's documentation describes).
"""

from __future__ import annotations

import gc
import os

from uvicorn_worker import UvicornWorker


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() == "true"


class Worker(UvicornWorker):
    """uvicorn in a gunicorn worker, with the project's settings: Django has no lifespan
    handlers (saying so spares a probe per worker); the proxy's X-Forwarded-* headers are
    trusted only behind a TLS proxy (DJANGO_BEHIND_TLS_PROXY), from FORWARDED_ALLOW_IPS."""

    CONFIG_KWARGS = {
        **UvicornWorker.CONFIG_KWARGS,
        "lifespan": "off",
        "proxy_headers": _flag("DJANGO_BEHIND_TLS_PROXY"),
        "access_log": _flag("UVICORN_ACCESS_LOG"),
    }


wsgi_app = "config.asgi:application"
worker_class = "config.gunicorn.Worker"
bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
preload_app = True
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
# How long an idle connection stays open for its next request. Longer than the idle timeout
# of the proxy in front (60 s for nginx's upstream keep-alive and AWS's load balancers), so
# the proxy is never the one sending on a connection the server is closing; gunicorn's own
# 2 s made that race an error a client could see (decision 092).
keepalive = int(os.environ.get("WEB_KEEPALIVE", "75"))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
loglevel = os.environ.get("UVICORN_LOG_LEVEL", "info")
accesslog = "-" if _flag("UVICORN_ACCESS_LOG") else None
# gunicorn's runtime control socket (one fixed path per user) is not used: several servers
# on one machine, as the tests start, would share it.
control_socket_disable = True

# The master never allocates much after loading the application: collecting in it would only
# dirty the pages the workers share.
gc.disable()


def pre_fork(server, worker) -> None:
    gc.freeze()


def post_fork(server, worker) -> None:
    gc.enable()
