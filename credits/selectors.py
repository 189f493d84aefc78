from django.db.models import QuerySet

from workspaces.models import Workspace

from .models import CreditAccount, CreditEntry


def credits_balance(*, workspace: Workspace) -> int:
    """Return the workspace's spendable balance in credits (0 before its first grant)."""
    balance = (
        CreditAccount.objects.filter(workspace_id=workspace.pk)
        .values_list("balance", flat=True)
        .first()
    )
    return balance or 0


def credit_entries_for_workspace(*, workspace: Workspace) -> QuerySet[CreditEntry]:
    """Return the workspace's ledger, newest first (ready to paginate)."""
    return (
        CreditEntry.objects.filter(workspace_id=workspace.pk)
        .select_related("actor")
        .order_by("-id")
    )
