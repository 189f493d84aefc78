import datetime

from django.core.management.base import BaseCommand, CommandError

from credits.services import credits_reservations_charge_expired
from workspaces.models import Workspace


class Command(BaseCommand):
    help = (
        "Charge, once, the credit reservations whose lease was not renewed for "
        "AI_HOLD_MAX_AGE_SECONDS (their serving process died, so the usage was never seen) "
        "their whole reservation, and print them (docs/decisions/107)."
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
        charged = credits_reservations_charge_expired(
            older_than=None if older_than is None else datetime.timedelta(seconds=older_than)
        )
        slugs = dict(
            Workspace.objects.filter(pk__in={r.workspace_id for r in charged}).values_list(
                "pk", "slug"
            )
        )
        for item in charged:
            self.stdout.write(
                f"charged hold {item.hold_id} of '{slugs.get(item.workspace_id, '?')}': "
                f"{item.credits:,} credits, its whole reservation: its process died "
                f"(last renewed {item.renewed_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        self.stdout.write(f"Charged {len(charged)} stale reservation(s).")
