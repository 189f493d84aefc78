"""After the system marks a key invalid, the words say what happened and what found it: the
key card's "Last changed … by <admin>" is about the key (a check that changes only its status
does not move it), and the admins' e-mail names what found the key invalid."""

import pytest
from django.core import mail

from llm_keys.models import KeyStatus
from llm_keys.services import Actor, llm_key_set
from tests.factories import fake_key

pytestmark = pytest.mark.django_db(transaction=True)


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


@pytest.mark.parametrize(
    ("who", "words"),
    [("periodic", "the periodic check found it invalid"), ("admin", "a check by admin@")],
)
def test_the_email_says_what_found_the_key_invalid(workspace, admin_user, standin, who, words):
    from llm_keys.services import llm_key_check
    from llm_keys.tasks import PERIODIC_CHECK_ACTOR

    raw = fake_key()
    llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(user=admin_user))
    standin.set_behavior(raw, "revoked")
    actor = PERIODIC_CHECK_ACTOR if who == "periodic" else Actor(user=admin_user)
    mail.outbox.clear()
    llm_key_check(llm_key=llm_key, actor=actor)

    (message,) = [m for m in mail.outbox if "invalid" in m.subject]
    assert words in message.body
