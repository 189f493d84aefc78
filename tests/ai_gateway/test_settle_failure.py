"""A settlement that cannot be written releases the hold: nothing stays held."""

import pytest
from django.db import IntegrityError

from ai_gateway import services as gateway
from credits.models import CreditEntry, EntryKind
from credits.selectors import credits_balance

from .helpers import body, post

pytestmark = pytest.mark.django_db


def test_a_usage_row_the_database_refuses_rolls_the_settle_back_and_releases_the_hold(
    member_client, workspace, funded, standin, monkeypatch
):
    def refused(call, **fields):
        raise IntegrityError("usage row refused")

    monkeypatch.setattr(gateway.AICall, "record", refused)
    with pytest.raises(IntegrityError):
        post(member_client, body())

    hold = CreditEntry.objects.get(kind=EntryKind.HOLD)
    close = CreditEntry.objects.get(hold=hold)
    assert close.kind == EntryKind.RELEASE  # the settle rolled back with the row
    assert not CreditEntry.objects.filter(kind=EntryKind.SETTLE).exists()
    assert credits_balance(workspace=workspace) == funded
