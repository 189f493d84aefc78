import pytest

from api_tokens.models import ApiToken, ApiTokenEvent
from api_tokens.services import api_token_authenticate
from tests.commands.conftest import run
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db


def test_create_prints_the_token_alone_on_the_last_line(workspace):
    outcome = run("create_api_token", "acme", "--name", "nightly job")
    assert outcome.error is None
    lines = outcome.stdout.splitlines()
    raw = lines[-1]
    assert raw.startswith("byok_") and " " not in raw
    assert all(raw not in line for line in lines[:-1]) and raw not in outcome.stderr
    token = api_token_authenticate(raw_token=raw)
    assert token.name == "nightly job" and token.workspace == workspace
    assert token.created_by is None and token.created_by_label == "operator (create_api_token)"
    assert ApiTokenEvent.objects.get().actor_display == "operator (create_api_token)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--name", "x"), "No workspace with slug 'nope'"),
        (("acme", "--name", "  "), "Give the token a name"),
        (("acme", "--name", "y" * 101), "at most 100 characters"),
        (("acme", "--name", "taken"), "already has a live token named “taken”"),
    ],
)
def test_create_refuses_bad_input_in_one_line_and_writes_nothing(workspace, args, message):
    api_token_for(workspace, "taken")
    outcome = run("create_api_token", *args)
    assert message in outcome.error
    assert outcome.stdout == ""
    assert ApiToken.objects.count() == 1 and ApiTokenEvent.objects.count() == 1


def test_create_needs_a_name(workspace):
    outcome = run("create_api_token", "acme")
    assert "--name" in outcome.error
    assert not ApiToken.objects.exists()


def test_revoke_by_name(workspace):
    _, raw = api_token_for(workspace, "nightly job")
    outcome = run("revoke_api_token", "acme", "nightly job")
    assert outcome.error is None
    assert "Revoked API token “nightly job”" in outcome.stdout
    assert raw not in outcome.text
    assert api_token_authenticate(raw_token=raw) is None
    event = ApiTokenEvent.objects.get(action="revoked")
    assert event.actor_label == "operator (revoke_api_token)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "ci"), "No workspace with slug 'nope'"),
        (("acme", "other"), "has no live API token named “other”"),
    ],
)
def test_revoke_refuses_bad_input_in_one_line(workspace, args, message):
    _, raw = api_token_for(workspace, "ci")
    outcome = run("revoke_api_token", *args)
    assert message in outcome.error
    assert api_token_authenticate(raw_token=raw) is not None


def test_revoking_twice_is_an_error_the_second_time(workspace):
    api_token_for(workspace, "ci")
    assert run("revoke_api_token", "acme", "ci").error is None
    assert "has no live API token named “ci”" in run("revoke_api_token", "acme", "ci").error
