import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from credits.services import credits_grant, low_balance_threshold
from workspaces.formatting import format_credits, format_datetime
from workspaces.models import Membership, Workspace
from workspaces.services import user_get_or_create, workspace_create

DEMO_EMAIL = "admin@demo.local"
# Enough for the tour's prompts (one answer of 512 tokens costs under 100 credits) above the
# low-balance line, so the newcomer's first prompt sends no alert and shows no banner
# (decision 130). One grant, with a fixed idempotency key: a restart never grants twice
# (decision 066).
DEMO_TOUR_CREDITS = 10_000


def demo_starting_credits() -> int:
    """Return the demo's starting credits: the tour's share above the low-balance threshold."""
    return low_balance_threshold() + DEMO_TOUR_CREDITS


DEMO_GRANT_KEY = "demo-setup:starting-grant"
# Where `make run` (scripts/run_dev.py) finds the login to print again once every process is
# up; it deletes the file when it has read it.
LOGIN_FILE = "demo-login.txt"


def login_box(*, email: str, password: str, slug: str) -> str:
    lines = [
        "Demo login",
        f"  email:    {email}",
        f"  password: {password}",
        f"  workspace: /w/{slug}/   settings: /w/{slug}/settings/llm-key/",
    ]
    width = max(len(line) for line in lines) + 2
    edge = "+" + "-" * width + "+"
    return "\n".join([edge, *(f"| {line.ljust(width - 1)}|" for line in lines), edge])


class Command(BaseCommand):
    help = (
        "Create the demo workspace and its admin for local development, give the workspace "
        "its one-time starting credits, and print the login."
    )

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(12)
        workspace = Workspace.objects.filter(slug="demo").first()
        if workspace is None:
            workspace = workspace_create(
                slug="demo", name="Demo workspace", admin_email=DEMO_EMAIL, admin_password=password
            )
        user, _ = user_get_or_create(email=DEMO_EMAIL)
        # A fresh password every start, so the printed login always works.
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        Membership.objects.get_or_create(
            workspace=workspace, user=user, defaults={"role": Membership.Role.ADMIN}
        )
        entry = credits_grant(
            workspace=workspace,
            amount=demo_starting_credits(),
            reason="Demo workspace: one-time starting credits, so the tour's first prompt "
            "is answered.",
            idempotency_key=DEMO_GRANT_KEY,
        )
        box = login_box(email=DEMO_EMAIL, password=password, slug=workspace.slug)
        self.stdout.write(f"\n{box}\n")
        self.stdout.write(
            f"Starting credits: {format_credits(entry.amount)} (granted once, on "
            f"{format_datetime(entry.created_at)}).\n"
        )
        var = Path(settings.BASE_DIR) / "var"
        var.mkdir(exist_ok=True)
        path = var / LOGIN_FILE
        # Readable by this user only: it holds the demo password until run_dev prints it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(box + "\n")
