import datetime

from django.core.management.base import BaseCommand, CommandError

from credits.services import credits_reservations_release_expired
from workspaces.models import Workspace


class Command(BaseCommand):
    help = (
        "Release, once, the credit reservations whose lease was not renewed for "
        "AI_HOLD_MAX_AGE_SECONDS (their serving process died), and print them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Lease age that counts as dead (default: AI_HOLD_MAX_AGE_SECONDS).",
        )

    def handle(self, *args, older_than: float | None, **options):
        if older_than is not None and older_than < 0:
            raise CommandError("--older-than must be zero or more seconds.")
        released = credits_reservations_release_expired(
            older_than=None if older_than is None else datetime.timedelta(seconds=older_than)
        )
        slugs = dict(
            Workspace.objects.filter(pk__in={r.workspace_id for r in released}).values_list(
                "pk", "slug"
            )
        )
        for item in released:
            self.stdout.write(
                f"released hold {item.hold_id} of '{slugs.get(item.workspace_id, '?')}': "
                f"{item.credits:,} credits (last renewed {item.renewed_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        self.stdout.write(f"Released {len(released)} stale reservation(s).")
