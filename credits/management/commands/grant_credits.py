from django.core.management.base import BaseCommand, CommandError

from credits.selectors import credits_balance
from credits.services import credits_grant
from workspaces.echo import shown
from workspaces.models import Workspace


def _positive_int(value: str) -> int:
    try:
        amount = int(value.strip().replace("_", ""))
    except ValueError:
        raise CommandError(
            f"AMOUNT must be a whole number of credits, not {shown(value)}."
        ) from None
    if amount <= 0:
        raise CommandError(f"AMOUNT must be greater than zero, not {amount}.")
    return amount


class Command(BaseCommand):
    help = "Grant AI credits to a workspace, with the reason recorded in its ledger."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The workspace's slug.")
        parser.add_argument("amount", help="Credits to add (a positive whole number).")
        parser.add_argument(
            "--reason",
            # Checked in handle() so a missing reason is a one-line error like the others.
            default=None,
            help="Why these credits are granted (required; kept in the ledger).",
        )

    def handle(self, *args, slug: str, amount: str, reason: str | None, **options):
        credits = _positive_int(amount)
        if reason is None or not reason.strip():
            raise CommandError("--reason is required: say why the credits are granted.")
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {shown(slug)}.")
        try:
            credits_grant(workspace=workspace, amount=credits, reason=reason)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        balance = credits_balance(workspace=workspace)
        self.stdout.write(
            f"Granted {credits:,} credits to '{workspace.slug}'. New balance: {balance:,} credits."
        )
