"""A real process dies (SIGKILL) while its AI request waits for the provider: its hold stays
open until the stale-hold sweep charges it whole and writes its usage row (decision 107)."""

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from ai_gateway.models import AIRequest
from credits.models import CreditEntry, EntryKind
from credits.selectors import credits_balance
from credits.services import STALE_HOLD_REASON, credits_grant, credits_release_stale_holds
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import django
django.setup()
from ai_gateway.services import create_message
from workspaces.models import Workspace
workspace = Workspace.objects.get(slug="dying")
create_message(
    workspace=workspace, user=None, model="claude-sonnet-5", max_tokens=200,
    messages=[{"role": "user", "content": "Tell me a long story"}],
)
"""


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_the_sweep_charges_the_hold_of_a_killed_process_and_records_it(
    on_postgres, standin, settings
):
    workspace = WorkspaceFactory(name="Dying", slug="dying")
    MembershipFactory(workspace=workspace, role="admin")
    credits_grant(workspace=workspace, amount=100_000, reason="Test")
    standin.state.timeout_sleep = 60.0  # the provider never answers in time
    standin.set_behavior(settings.PLATFORM_ANTHROPIC_API_KEY, "timeout")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url(),
        "ANTHROPIC_BASE_URL": standin.url,
        "PLATFORM_ANTHROPIC_API_KEY": settings.PLATFORM_ANTHROPIC_API_KEY,
        "AI_REQUEST_TIMEOUT_SECONDS": "120",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not CreditEntry.objects.filter(workspace=workspace, kind=EntryKind.HOLD).exists():
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child never held credits"
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while not standin.requests:  # the request is at the provider now
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    hold = CreditEntry.objects.get(workspace=workspace, kind=EntryKind.HOLD)
    assert not CreditEntry.objects.filter(hold=hold).exists()  # leaked ...
    assert credits_balance(workspace=workspace) == 100_000 - hold.held

    # ... until the sweep (here: with no minimum age) charges it whole, with its reason: the
    # usage was never seen, the request was at the provider.
    assert credits_release_stale_holds(older_than=datetime.timedelta(0)) == 1
    charge = CreditEntry.objects.get(hold=hold)
    assert (charge.kind, charge.charged, charge.reason) == (
        EntryKind.SETTLE,
        hold.held,
        STALE_HOLD_REASON,
    )
    assert credits_balance(workspace=workspace) == 100_000 - hold.held
    [row] = AIRequest.objects.filter(workspace=workspace)
    assert (row.outcome, row.credits_charged, row.model) == (
        "process_died",
        hold.held,
        "claude-sonnet-5",
    )
