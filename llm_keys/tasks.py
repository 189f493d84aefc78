"""Celery tasks for stored provider keys. Thin: every message carries row ids (and a time),
never a key; each task loads its row and calls a service in ``llm_keys.services``."""

from __future__ import annotations

import logging
import random
import smtplib
import socket
import time

# Imported here, before a prefork worker forks its pool, so every child inherits them: left
# to the first check, the rate limiter's Redis client and the SDK's HTTP transport cost each
# child ~0.2 s of CPU on its first key (20 children: 4 s of a sweep on two cores). The SDK
# imports OpenTelemetry's propagators on its first request (~30 ms per child).
import httpcore2  # noqa: F401
import opentelemetry.propagate  # noqa: F401
import redis  # noqa: F401
from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from providers import CheckOutcome

from .models import KeyStatus, LLMKey, Provider
from .ratelimit import (
    MAX_INLINE_WAIT_SECONDS,
    permit_reserve,
    permit_usable,
    permit_wait,
    rate_limiter_for,
)
from .selectors import llm_key_get_for_check
from .services import Actor, KeyUnreadableError, llm_key_check, notify_admins_key_invalid

logger = logging.getLogger(__name__)

PERIODIC_CHECK_ACTOR = Actor(label="system (periodic check)")

# A mail server that is down, slow, unreachable by name, or answers 4xx: try again later.
# smtplib's errors are OSErrors too; TimeoutError and socket.gaierror were not retried.
TRANSIENT_MAIL_ERRORS = (smtplib.SMTPException, ConnectionError, TimeoutError, socket.gaierror)


@worker_process_init.connect
def _prepare_check_clients(**kwargs) -> None:
    """Build this pool process's provider clients and rate limiters when it starts.

    Each process needs its own (connection pools do not survive a fork), and building them
    costs ~50 ms of CPU (most of it loading the CA bundle): paid here once per process
    lifetime, not by the first key of a sweep.
    """
    # The SDKs are imported here, in the worker's processes, and not with this module: the
    # admin imports it in every process, management commands included (providers/__init__).
    from providers.anthropic import shared_client as anthropic_client
    from providers.gemini import shared_client as gemini_client
    from providers.openai import shared_client as openai_client

    try:
        for build in (anthropic_client, openai_client, gemini_client):
            build()
        for provider in Provider.values:
            rate_limiter_for(f"llm-key-check:{provider}")
    except Exception:  # a check builds them itself, and reports what is wrong
        logger.warning("Could not prepare the key-check clients of this process.", exc_info=True)


def retry_countdown(retries: int) -> float:
    """Return the delay before the next try: exponential, capped, with jitter.

    The cap stays below the broker's visibility timeout: Redis hands a message whose
    countdown outlasts that timeout to a second worker, which would check the key twice.
    """
    cap = min(
        settings.LLM_KEY_CHECK_RETRY_BACKOFF_MAX_SECONDS,
        settings.CELERY_BROKER_VISIBILITY_TIMEOUT * 0.9,
    )
    ceiling = min(cap, settings.LLM_KEY_CHECK_RETRY_BACKOFF_SECONDS * 2**retries)
    # Half fixed, half random: tries keep backing off, and keys that failed together during
    # one provider outage do not all come back in the same second.
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def _decided_since(llm_key: LLMKey, requested_at: str | None) -> bool:
    """True when a verdict (not a failed try) was recorded after the check was requested."""
    since = parse_datetime(requested_at) if requested_at else None
    return bool(since and llm_key.last_checked_at and not llm_key.last_error) and (
        llm_key.last_checked_at >= since
    )


@shared_task(name="llm_keys.tasks.llm_keys_check_all", ignore_result=True)
def llm_keys_check_all() -> int:
    """Queue one check per stored key, least recently checked first. Returns the count."""
    requested_at = timezone.now().isoformat()
    ids = LLMKey.objects.order_by(F("last_checked_at").asc(nulls_first=True), "pk").values_list(
        "pk", flat=True
    )
    count = 0
    # One producer (one broker connection) for the whole fan-out.
    with llm_key_check_task.app.producer_or_acquire() as producer:
        for llm_key_id in ids.iterator(chunk_size=500):
            llm_key_check_task.apply_async(
                args=(llm_key_id,), kwargs={"requested_at": requested_at}, producer=producer
            )
            count += 1
    logger.info("Queued checks of %d stored keys.", count)
    return count


@shared_task(
    bind=True,
    name="llm_keys.tasks.llm_key_check",
    ignore_result=True,
    acks_late=True,
    # The probe itself times out after LLM_KEY_CHECK_TIMEOUT_SECONDS; this only stops a
    # check stuck elsewhere (a database lock) from holding a worker slot for ever.
    soft_time_limit=120,
    time_limit=150,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def llm_key_check_task(
    self, llm_key_id: int, requested_at: str | None = None, permit_at: float | None = None
) -> str:
    """Check one stored key with the provider and record the verdict.

    Idempotent: a verdict already recorded since ``requested_at`` (a redelivered message,
    an admin's "Check now") skips the call, and the status transition happens under a row
    lock, so a duplicate check never makes a second transition or a second e-mail.

    The provider-wide rate limit is waited for outside the task: a permit more than a moment
    away sends this check again with a countdown to it (and the permit's time), without
    using up the retries kept for provider failures.
    """
    llm_key = llm_key_get_for_check(llm_key_id)
    if llm_key is None:
        return "removed"
    if _decided_since(llm_key, requested_at):
        return "already checked"
    if not permit_usable(permit_at):
        permit_at = permit_reserve(f"llm-key-check:{llm_key.provider}")
    wait = permit_at - time.time()
    if wait > MAX_INLINE_WAIT_SECONDS and not self.request.is_eager:
        self.signature_from_request(
            kwargs={**self.request.kwargs, "permit_at": permit_at}, countdown=wait
        ).apply_async()
        logger.debug("Check of key %s waits %.1f s for its permit.", llm_key.pk, wait)
        return "waiting for a permit"
    permit_wait(permit_at)
    try:
        result = llm_key_check(llm_key=llm_key, actor=PERIODIC_CHECK_ACTOR)
    except KeyUnreadableError:
        # Logged and audited by the service. No retry can fix a key ring: an operator must.
        # The status stays; the next sweep tries (and reports) again.
        return "unreadable"
    if result.outcome != CheckOutcome.UNKNOWN:
        return str(result.outcome)
    max_retries = settings.LLM_KEY_CHECK_MAX_RETRIES
    if self.request.retries >= max_retries:
        logger.warning(
            "Check of %s key %s gave no verdict after %d tries (%s); next sweep tries again.",
            llm_key.provider,
            llm_key.pk,
            self.request.retries + 1,
            result.reason,
        )
        return str(result.outcome)
    raise self.retry(
        # The permit is spent: the retry takes a new one when it runs.
        kwargs={**self.request.kwargs, "permit_at": None},
        countdown=retry_countdown(self.request.retries),
        max_retries=max_retries,
    )


@shared_task(
    name="llm_keys.tasks.llm_key_invalid_notify",
    ignore_result=True,
    # At most once: acknowledged before it runs, so a redelivery cannot send a second
    # e-mail. A failed send (nothing went out) is retried.
    acks_late=False,
    autoretry_for=TRANSIENT_MAIL_ERRORS,
    retry_backoff=30,
    max_retries=5,
)
def llm_key_invalid_notify(llm_key_id: int) -> int:
    """E-mail the workspace admins that their key became invalid. Returns the e-mails sent."""
    llm_key = LLMKey.objects.filter(pk=llm_key_id).first()
    if llm_key is None or llm_key.status != KeyStatus.INVALID:
        # Fixed or removed before the e-mail went out: nothing left to tell.
        return 0
    return notify_admins_key_invalid(
        llm_key.workspace_id,
        llm_key.status_reason,
        masked=llm_key.masked,
        provider=llm_key.provider,
    )
