"""The key card's "Last changed … by <admin>" is about the key: a check that changes only
its status (the sweep, a request answered 401) does not move it."""

import pytest

from llm_keys.models import KeyStatus
from llm_keys.services import Actor, llm_key_set
from tests.factories import fake_key

pytestmark = pytest.mark.django_db


def test_a_check_that_finds_the_key_invalid_does_not_read_as_a_change_by_the_admin(
    admin_client, workspace, admin_user, standin
):
    from llm_keys.services import llm_key_check
    from llm_keys.tasks import PERIODIC_CHECK_ACTOR

    raw = fake_key()
    llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(user=admin_user))
    saved_at = llm_key.updated_at
    standin.set_behavior(raw, "revoked")
    llm_key_check(llm_key=llm_key, actor=PERIODIC_CHECK_ACTOR)

    llm_key.refresh_from_db()
    assert llm_key.status == KeyStatus.INVALID
    assert llm_key.updated_at == saved_at
