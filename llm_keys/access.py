"""The access helper of every workspace page and API: who the member is, and the
workspace's stored key, in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import FilteredRelation, Q
from django.http import HttpRequest

from workspaces.access import get_membership
from workspaces.models import Membership, Workspace

from .models import KeyStatus, LLMKey, Provider


@dataclass(frozen=True, slots=True)
class MemberContext:
    """A member's request in a workspace: the workspace, the membership, and the workspace's
    Anthropic key row (None without one)."""

    workspace: Workspace
    membership: Membership
    llm_key: LLMKey | None

    @property
    def invalid_llm_key(self) -> LLMKey | None:
        """The stored key if it is invalid: every workspace page shows a banner for it."""
        if self.llm_key is not None and self.llm_key.status == KeyStatus.INVALID:
            return self.llm_key
        return None

    def as_context(self) -> dict[str, Any]:
        """What every workspace template reads (base.html's navigation and banner)."""
        return {"member": self, "workspace": self.workspace, "membership": self.membership}


def get_member_context(request: HttpRequest, slug: str, *, admin: bool = False) -> MemberContext:
    """Return the member's context in the workspace; 404 for outsiders and anonymous users,
    403 for members where ``admin`` is asked."""
    membership = get_membership(
        request,
        slug,
        admin=admin,
        queryset=Membership.objects.annotate(
            anthropic_key=FilteredRelation(
                "workspace__llm_keys",
                condition=Q(workspace__llm_keys__provider=Provider.ANTHROPIC),
            )
        ).select_related("workspace", "anthropic_key"),
    )
    # select_related leaves the attribute unset when the LEFT JOIN found no key row.
    llm_key = getattr(membership, "anthropic_key", None)
    return MemberContext(workspace=membership.workspace, membership=membership, llm_key=llm_key)
