"""A workspace API token is shown once — on the page that creates it, or on the last line of
``create_api_token`` — and nowhere else: not in a log record, another page, the admin, an
audit event, a usage row, an e-mail or the database. Its hash stays in its own column."""

import re

import pytest
from django.urls import reverse

from ai_gateway.models import AIRequest
from api_tokens.models import ApiToken, ApiTokenEvent
from api_tokens.services import api_token_authenticate
from tests.commands.conftest import run
from tests.factories import UserFactory
from tests.leaks import assert_secret_absent, capture_all_logs

pytestmark = pytest.mark.django_db

URL = "/w/acme/settings/api-tokens/"


def _text(response) -> str:
    return response.content.decode() + str(response.headers)


def test_a_token_appears_only_in_its_one_creation_answer(
    admin_client, admin_user, workspace, client, django_capture_on_commit_callbacks
):
    staff = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    texts = []
    with capture_all_logs() as records, django_capture_on_commit_callbacks(execute=True):
        created_page = admin_client.post(URL, {"name": "from the page"})
        page_token = re.search(rb'value="(byok_[^"]+)"', created_page.content).group(1).decode()
        outcome = run("create_api_token", "acme", "--name", "from the command")
        command_token = outcome.stdout.splitlines()[-1]
        texts.append("\n".join(outcome.stdout.splitlines()[:-1]) + outcome.stderr)

        for raw in (page_token, command_token):
            token = api_token_authenticate(raw_token=raw)
            assert token is not None  # the tokens really work
            AIRequest.objects.create(
                workspace=workspace,
                api_token=token,
                provider="anthropic",
                model="claude-sonnet-5",
                credential_source="platform",
                outcome="ok",
                input_tokens=10,
                output_tokens=5,
                credits_charged=1,
            )
            api_token_authenticate(raw_token=raw + "x")  # a wrong guess near it
        usage = admin_client.get("/w/acme/usage/")
        assert "from the page" in usage.content.decode()  # the usage page names the token
        texts.append(_text(usage))
        texts.append(_text(admin_client.get(URL)))
        for name in ("from the page", "from the command"):
            token = ApiToken.objects.get(name=name)
            texts.append(_text(admin_client.get(f"{URL}{token.pk}/revoke/")))
        texts.append(
            _text(
                admin_client.post(
                    f"{URL}{ApiToken.objects.get(name='from the page').pk}/revoke/", follow=True
                )
            )
        )
        revoke = run("revoke_api_token", "acme", "from the command")
        texts.append(revoke.text)
        for raw in (page_token, command_token):
            assert api_token_authenticate(raw_token=raw) is None
        for path in (
            reverse("admin:api_tokens_apitoken_changelist"),
            reverse("admin:api_tokens_apitokenevent_changelist"),
            reverse("admin:ai_gateway_airequest_changelist"),
            reverse("admin:api_tokens_apitoken_change", args=[ApiToken.objects.first().pk]),
        ):
            texts.append(_text(client.get(path)))

    hashes = list(ApiToken.objects.values_list("token_hash", flat=True))
    for raw in (page_token, command_token):
        assert_secret_absent(raw, records=records, texts=texts)
    assert created_page.content.decode().count(page_token) == 1
    events = " ".join(str(v) for row in ApiTokenEvent.objects.values() for v in row.values())
    usage_rows = " ".join(str(v) for row in AIRequest.objects.values() for v in row.values())
    assert ApiTokenEvent.objects.count() == 4
    for token_hash in hashes:
        assert_secret_absent(
            token_hash, records=records, texts=[*texts, events, usage_rows], check_db=False
        )
