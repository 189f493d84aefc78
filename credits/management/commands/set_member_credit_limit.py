from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from credits.exceptions import CreditsError
from credits.services import MAX_AMOUNT, credits_member_limit_set
from workspaces.models import Membership, Workspace


def _limit(value: str) -> int | None:
    text = value.strip().lower()
    if text == "none":
        return None
    try:
        amount = int(text.replace("_", ""))
    except ValueError:
        raise CommandError(
            f"AMOUNT must be a whole number of credits or 'none', not '{value}'."
        ) from None
    if amount < 0:
        raise CommandError(f"AMOUNT cannot be negative ({amount}); use 0 to stop the member.")
    if amount > MAX_AMOUNT:
        raise CommandError(f"AMOUNT is at most {MAX_AMOUNT:,} credits.")
    return amount


class Command(BaseCommand):
    help = (
        "Set a member's monthly AI credits limit in a workspace, or 'none' for no limit "
        "(requests on the workspace's own Anthropic key are never limited)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The workspace's slug.")
        parser.add_argument("email", help="The member's e-mail address.")
        parser.add_argument("amount", help="Credits per calendar month (UTC), or 'none'.")

    def handle(self, *args, slug: str, email: str, amount: str, **options):
        monthly_limit = _limit(amount)
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug '{slug}'.")
        user = get_user_model().objects.filter(email__iexact=email.strip()).first()
        if user is None or not Membership.objects.filter(workspace=workspace, user=user).exists():
            raise CommandError(f"'{email}' is not a member of the workspace '{slug}'.")
        try:
            credits_member_limit_set(
                workspace=workspace,
                member=user,
                monthly_limit=monthly_limit,
                actor_label="operator (set_member_credit_limit)",
            )
        except (CreditsError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        shown = "no limit" if monthly_limit is None else f"{monthly_limit:,} credits a month"
        self.stdout.write(f"Set the limit of {user.email} in '{workspace.slug}' to {shown}.")
