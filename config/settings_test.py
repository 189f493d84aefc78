"""Settings for the test suite: the real settings module, with test defaults in the
environment first. DATABASE_URL still switches the suite to PostgreSQL."""

import os

os.environ.setdefault("DJANGO_READ_DOT_ENV", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
# A fixed development ring for tests only; production rings come from generate_encryption_key.
os.environ.setdefault(
    "LLM_KEY_ENCRYPTION_KEYS", "test1:dGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY="
)
os.environ.setdefault("DJANGO_SECURE_COOKIES", "false")
os.environ.setdefault("EMAIL_URL", "memorymail://")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
# The development broker's transport goes with its filesystem:// URL, not with memory://.
CELERY_BROKER_TRANSPORT = None
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}  # noqa: F405
# Tests serve static files from the finders; there is no collectstatic output to look at.
STATIC_ROOT = None
SERVESTATIC_USE_FINDERS = True
LOGGING["handlers"]["console"]["class"] = "tests.logs.CurrentStderrHandler"  # noqa: F405
# Tasks run eagerly here, where a countdown cannot wait: the save's re-check is tested with
# it switched on and the queue observed (tests/llm_keys/test_unverified_recheck.py).
LLM_KEY_RECHECK_UNVERIFIED_AFTER_SECONDS = 0
