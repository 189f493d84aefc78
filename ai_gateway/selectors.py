"""Reads for the pages where admins land: who pays, key health and balance at a glance."""

from __future__ import annotations

from dataclasses import dataclass

from credits.models import CreditAccount
from llm_keys.models import KeyStatus, LLMKey, Provider
from llm_keys.selectors import NextCredentials, credentials_next_for_status
from workspaces.models import Membership, Workspace


@dataclass(frozen=True, slots=True)
class WorkspaceStatus:
    """One workspace as its home and the workspace list show it."""

    membership: Membership
    paid_with: NextCredentials
    key: LLMKey | None
    balance: int

    @property
    def workspace(self) -> Workspace:
        return self.membership.workspace

    @property
    def ai_stopped(self) -> bool:
        return self.key is not None and self.key.status == KeyStatus.INVALID


def workspace_statuses(*, memberships: list[Membership]) -> list[WorkspaceStatus]:
    """Return each membership's workspace status, in three queries whatever their number."""
    ids = [m.workspace_id for m in memberships]
    keys = {
        key.workspace_id: key
        for key in LLMKey.objects.filter(workspace_id__in=ids, provider=Provider.ANTHROPIC)
    }
    balances = dict(
        CreditAccount.objects.filter(workspace_id__in=ids).values_list("workspace_id", "balance")
    )
    return [
        WorkspaceStatus(
            membership=m,
            paid_with=credentials_next_for_status(
                keys[m.workspace_id].status if m.workspace_id in keys else None
            ),
            key=keys.get(m.workspace_id),
            balance=balances.get(m.workspace_id, 0),
        )
        for m in memberships
    ]
