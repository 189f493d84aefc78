import re

import pytest
from django.core import mail
from django.test import Client

from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from llm_keys.services import Actor, llm_key_passthrough_audit, llm_key_set
from tests.factories import api_token_for, fake_key

URL = "/w/acme/settings/llm-key/"
REMOVE_URL = "/w/acme/settings/llm-key/remove/"
CHECK_URL = "/w/acme/settings/llm-key/check/"

pytestmark = pytest.mark.django_db


def save(client, raw, provider="anthropic", **kwargs):
    return client.post(URL, {"provider": provider, "api_key": raw}, **kwargs)


class TestAccess:
    @pytest.mark.parametrize(
        "method,url", [("get", URL), ("post", URL), ("post", REMOVE_URL), ("post", CHECK_URL)]
    )
    def test_anonymous_is_sent_to_login(self, client, workspace, method, url):
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert response.url.startswith("/login/?next=")

    @pytest.mark.parametrize(
        "method,url", [("get", URL), ("post", URL), ("post", REMOVE_URL), ("post", CHECK_URL)]
    )
    def test_outsider_gets_404(self, outsider_client, workspace, method, url):
        assert getattr(outsider_client, method)(url).status_code == 404

    @pytest.mark.parametrize(
        "method,url", [("get", URL), ("post", URL), ("post", REMOVE_URL), ("post", CHECK_URL)]
    )
    def test_member_gets_403(self, member_client, method, url):
        assert getattr(member_client, method)(url).status_code == 403

    def test_unknown_workspace_is_404_even_for_admins(self, admin_client):
        assert admin_client.get("/w/nope/settings/llm-key/").status_code == 404

    def test_member_cannot_remove_or_replace_the_key(self, member_client, saved_key, standin):
        save(member_client, fake_key())
        member_client.post(REMOVE_URL)
        stored = LLMKey.objects.get()
        assert stored.ciphertext == saved_key.ciphertext
        assert len(standin.requests) == 1  # only the fixture's own check

    def test_admin_sees_the_page(self, admin_client):
        response = admin_client.get(URL)
        assert response.status_code == 200
        body = response.content.decode()
        assert 'name="api_key"' in body and 'type="password"' in body
        assert 'name="provider"' in body
        assert "Save changes" in body
        assert 'data-credential-source="platform"' in body

    def test_other_workspaces_key_is_not_reachable(self, outsider_client, saved_key):
        for url in (URL, REMOVE_URL, CHECK_URL):
            assert outsider_client.post(url).status_code == 404
        body = outsider_client.get("/w/other/settings/llm-key/").content.decode()
        assert saved_key.hint not in body
        assert LLMKey.objects.filter(pk=saved_key.pk).exists()


class TestCsrf:
    @pytest.mark.parametrize("url", [URL, REMOVE_URL, CHECK_URL])
    def test_posts_without_a_token_are_refused(self, admin_user, saved_key, standin, url):
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin_user)
        response = client.post(url, {"provider": "anthropic", "api_key": fake_key()})
        assert response.status_code == 403
        assert LLMKey.objects.get().ciphertext == saved_key.ciphertext
        assert len(standin.requests) == 1

    def test_a_post_with_the_token_is_accepted(self, admin_user, standin):
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin_user)
        client.get(URL)
        token = client.cookies["csrftoken"].value
        response = client.post(
            URL, {"provider": "anthropic", "api_key": fake_key(), "csrfmiddlewaretoken": token}
        )
        assert response.status_code == 302
        assert LLMKey.objects.get().status == KeyStatus.VALID


class TestSaving:
    def test_a_valid_key_is_saved_encrypted_and_shown_masked(
        self, admin_client, standin, admin_user
    ):
        raw = fake_key()
        response = save(admin_client, f"  {raw}\n", follow=True)
        body = response.content.decode()
        assert f"sk-ant-…{raw[-4:]}" in body
        assert 'data-key-status="valid"' in body
        assert "saved and verified" in body
        assert 'data-credential-source="byok"' in body
        assert raw not in body
        assert standin.keys_seen() == [raw]  # stripped before the provider saw it
        assert standin.requests[0].path == "/v1/models?limit=1"
        stored = LLMKey.objects.get()
        assert raw.encode() not in bytes(stored.ciphertext)
        assert stored.hint == raw[-4:]
        assert stored.created_by == admin_user and stored.updated_by == admin_user
        assert stored.last_verified_at is not None

    def test_the_password_field_never_renders_a_value(self, admin_client, standin):
        raw = fake_key("revoked")
        response = save(admin_client, raw)
        assert response.status_code == 400
        assert raw not in response.content.decode()
        assert 'value="' + raw not in response.content.decode()

    @pytest.mark.parametrize(
        "raw,message",
        [
            ("", "Enter your Anthropic API key."),
            ("   ", "Enter your Anthropic API key."),
            ("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "Anthropic keys start with"),
            ("hello", "Anthropic keys start with"),
            ("sk-ant-api03-abc def ghi jkl mno pqr stu", "characters an Anthropic key never has"),
            ("sk-ant-api03-abcdefghijklmnop\nqrstuvwxyz", "characters an Anthropic key never has"),
            ('sk-ant-api03-ab"cdefghijklmnopqrstuvwx', "characters an Anthropic key never has"),
            ("sk-ant-abc", "too short"),
            ("sk-ant-" + "a" * 300, "too long"),
        ],
    )
    def test_malformed_input_is_refused_without_a_provider_call(
        self, admin_client, standin, raw, message
    ):
        response = save(admin_client, raw)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert standin.requests == []
        assert not LLMKey.objects.exists()
        assert not KeyEvent.objects.exists()

    def test_unknown_provider_is_refused(self, admin_client, standin):
        response = save(admin_client, fake_key(), provider="mistral")
        assert response.status_code == 400
        assert (
            "That provider is not supported: choose one from the list." in response.content.decode()
        )
        assert standin.requests == []
        assert not LLMKey.objects.exists()

    @pytest.mark.parametrize(
        "marker,reason",
        [("revoked", "revoked, has expired or is mistyped"), ("forbidden", "lacks permission")],
    )
    def test_rejected_keys_are_not_saved(self, admin_client, standin, marker, reason):
        response = save(admin_client, fake_key(marker))
        assert response.status_code == 400
        body = response.content.decode()
        assert reason in body
        assert "The key was not saved" in body
        assert not LLMKey.objects.exists()
        assert KeyEvent.objects.get().action == KeyEvent.Action.REJECTED

    def test_a_rejected_replacement_keeps_the_working_key(self, admin_client, saved_key, standin):
        response = save(admin_client, fake_key("revoked"))
        assert response.status_code == 400
        stored = LLMKey.objects.get()
        assert stored.ciphertext == saved_key.ciphertext
        assert stored.status == KeyStatus.VALID

    def test_rate_limited_key_is_recognised_and_saved_valid(self, admin_client, standin):
        save(admin_client, fake_key("ratelimited"))
        assert LLMKey.objects.get().status == KeyStatus.VALID

    @pytest.mark.parametrize("marker", ["servererror", "overloaded", "timeout"])
    def test_provider_outage_saves_unverified_with_a_notice(self, admin_client, standin, marker):
        response = save(admin_client, fake_key(marker), follow=True)
        body = response.content.decode()
        stored = LLMKey.objects.get()
        assert stored.status == KeyStatus.UNVERIFIED
        assert stored.last_error
        assert 'data-key-status="unverified"' in body
        assert "will be checked again automatically" in body
        # Unverified keys are still used: the workspace pays with its own key.
        assert 'data-credential-source="byok"' in body

    def test_replacing_a_key_keeps_one_row_and_audits_it(self, admin_client, saved_key, standin):
        new = fake_key()
        save(admin_client, new)
        stored = LLMKey.objects.get()
        assert stored.hint == new[-4:]
        assert stored.ciphertext != saved_key.ciphertext
        actions = list(KeyEvent.objects.order_by("id").values_list("action", flat=True))
        assert actions == [KeyEvent.Action.SET, KeyEvent.Action.REPLACED]


class TestRemoveAndCheck:
    def test_remove_reverts_to_credits_and_is_audited(self, admin_client, saved_key, admin_user):
        response = admin_client.post(REMOVE_URL, follow=True)
        body = response.content.decode()
        assert "use AI credits again" in body
        assert 'data-credential-source="platform"' in body
        assert not LLMKey.objects.exists()
        event = KeyEvent.objects.first()
        assert event.action == KeyEvent.Action.REMOVED and event.actor == admin_user

    def test_remove_without_a_key_says_so(self, admin_client):
        response = admin_client.post(REMOVE_URL, follow=True)
        assert "There was no Anthropic key to remove" in response.content.decode()

    def test_check_now_marks_a_revoked_key_invalid_and_emails_admins_once(
        self, admin_client, saved_key, standin, admin_user, django_capture_on_commit_callbacks
    ):
        standin.set_behavior(saved_key.raw, "revoked")
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(CHECK_URL, follow=True)
        body = response.content.decode()
        assert 'data-key-status="invalid"' in body
        assert 'data-credential-source="none"' in body
        assert 'data-banner="llm-key-invalid"' in body
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == [admin_user.email]
        assert "/w/acme/settings/llm-key/" in mail.outbox[0].body
        assert re.search(r"invalid \(\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC\)", mail.outbox[0].body)
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(CHECK_URL)
        assert len(mail.outbox) == 1  # no second e-mail while it stays invalid
        actions = list(KeyEvent.objects.order_by("id").values_list("action", flat=True))
        assert actions == ["set", "became_invalid", "checked"]

    def test_check_now_during_an_outage_leaves_the_status(self, admin_client, saved_key, standin):
        standin.set_behavior(saved_key.raw, "overloaded")
        response = admin_client.post(CHECK_URL, follow=True)
        assert "Its status is unchanged" in response.content.decode()
        stored = LLMKey.objects.get()
        assert stored.status == KeyStatus.VALID
        assert "overloaded" in stored.last_error

    def test_a_key_fixed_at_the_provider_becomes_valid_again(
        self, admin_client, saved_key, standin
    ):
        standin.set_behavior(saved_key.raw, "revoked")
        admin_client.post(CHECK_URL)
        standin.set_behavior(saved_key.raw, "ok")
        admin_client.post(CHECK_URL)
        assert LLMKey.objects.get().status == KeyStatus.VALID
        assert KeyEvent.objects.filter(action=KeyEvent.Action.BECAME_VALID).count() == 1

    def test_check_with_no_key(self, admin_client, standin):
        response = admin_client.post(CHECK_URL, follow=True)
        assert "There is no Anthropic key to check" in response.content.decode()
        assert standin.requests == []


class TestBanner:
    def test_invalid_key_banner_shows_on_workspace_pages(
        self, admin_client, member_client, saved_key, standin
    ):
        standin.set_behavior(saved_key.raw, "revoked")
        admin_client.post(CHECK_URL)
        admin_home = admin_client.get("/w/acme/").content.decode()
        assert 'data-banner="llm-key-invalid"' in admin_home
        assert "/w/acme/settings/llm-key/" in admin_home
        member_home = member_client.get("/w/acme/").content.decode()
        assert 'data-banner="llm-key-invalid"' in member_home
        assert "Ask a workspace admin" in member_home

    def test_no_banner_while_the_key_works(self, admin_client, saved_key):
        assert 'data-banner="llm-key-invalid"' not in admin_client.get("/w/acme/").content.decode()


def test_settings_page_queries_do_not_grow_with_workspaces_or_events(
    admin_client, workspace, admin_user, django_assert_max_num_queries
):
    from tests.factories import MembershipFactory, WorkspaceFactory

    llm_key_set(workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user), check=False)
    with django_assert_max_num_queries(8) as few:
        assert admin_client.get(URL).status_code == 200
    for _ in range(30):
        llm_key_set(
            workspace=workspace, raw_key=fake_key(), actor=Actor(user=admin_user), check=False
        )
        other = WorkspaceFactory()
        MembershipFactory(workspace=other, user=admin_user, role="admin")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(URL).status_code == 200


def test_the_key_history_leaves_out_batches_and_files_calls(admin_client, saved_key, workspace):
    """Decision 125: a program polling a batch would push the key's changes off the page's
    short history; support sees those calls in the admin."""
    token, _raw = api_token_for(workspace, name="batch poller")
    for _ in range(12):
        llm_key_passthrough_audit(
            llm_key=saved_key,
            token=token,
            call="GET /v1/messages/batches/msgbatch_1",
            status=200,
            request_id="req_1",
        )

    body = admin_client.get(URL).content.decode()

    assert KeyEvent.objects.filter(action=KeyEvent.Action.PASSED_THROUGH).count() == 12
    assert "Key set" in body
    assert "Batches/Files call" not in body and "batch poller" not in body
