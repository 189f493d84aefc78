"""The Django admin as support staff see it: a ``Support`` user, staff but not superuser."""

import re

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.urls import reverse

from ai_gateway.models import AIRequest
from api_tokens.models import ApiToken, ApiTokenEvent
from credits.models import (
    CreditAlert,
    CreditEntry,
    CreditLimitEvent,
    CreditReservation,
    MemberCreditLimit,
)
from credits.services import credits_grant, credits_hold, credits_settle
from llm_keys.models import KeyEvent, KeyStatus, LLMKey
from tests.admin.conftest import assert_no_secret
from tests.conftest import SENTINEL_KEY
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import Workspace

SUPPORT_PERMISSIONS = {
    # Login lockouts (django-axes): seen and cleared by support.
    ("axes", "delete_accessattempt"),
    ("axes", "view_accessattempt"),
    ("axes", "view_accessfailurelog"),
    ("axes", "view_accesslog"),
    ("ai_gateway", "view_airequest"),
    ("api_tokens", "change_apitoken"),
    ("api_tokens", "view_apitoken"),
    ("api_tokens", "view_apitokenevent"),
    ("credits", "add_creditentry"),
    ("credits", "view_creditentry"),
    ("credits", "view_creditalert"),
    ("credits", "view_creditlimitevent"),
    ("credits", "view_membercreditlimit"),
    ("credits", "view_creditreservation"),
    ("llm_keys", "change_llmkey"),
    ("llm_keys", "delete_llmkey"),
    ("llm_keys", "view_keyevent"),
    ("llm_keys", "view_llmkey"),
    ("workspaces", "view_membership"),
    ("workspaces", "view_workspace"),
}
SUPPORT_MODELS = {
    Workspace,
    LLMKey,
    KeyEvent,
    CreditEntry,
    AIRequest,
    MemberCreditLimit,
    CreditLimitEvent,
    CreditAlert,
    CreditReservation,
    ApiToken,
    ApiTokenEvent,
    AccessAttempt,
    AccessLog,
    AccessFailureLog,
}


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_the_support_group_has_exactly_what_support_needs(db):
    permissions = Group.objects.get(name="Support").permissions.values_list(
        "content_type__app_label", "codename"
    )
    assert set(permissions) == SUPPORT_PERMISSIONS


class TestAccess:
    def test_anonymous_and_non_staff_are_sent_to_login(self, client, admin_client):
        for c in (client, admin_client):
            response = c.get(url(LLMKey, "changelist"))
            assert response.status_code == 302
            assert response.url.startswith("/admin/login/")

    def test_support_sees_only_its_models(self, support_client):
        index = support_client.get("/admin/").content.decode()
        for model in SUPPORT_MODELS:
            assert url(model, "changelist") in index
        assert "/admin/auth/user/" not in index
        assert "/admin/auth/group/" not in index

    @pytest.mark.parametrize("model_admin", list(admin.site._registry.values()), ids=str)
    def test_every_registered_changelist(self, support_client, sentinel_llm_key, model_admin):
        response = support_client.get(url(model_admin.model, "changelist"))
        if model_admin.model in SUPPORT_MODELS:
            assert response.status_code == 200
            assert_no_secret(response.content, sentinel_llm_key, str(model_admin))
        else:
            assert response.status_code == 403

    def test_cannot_edit_users_or_groups(self, support_client, support_user):
        response = support_client.post(
            reverse("admin:auth_user_change", args=[support_user.pk]),
            {"username": support_user.username, "is_superuser": "on"},
        )
        assert response.status_code == 403
        assert support_client.get(reverse("admin:auth_group_add")).status_code == 403
        support_user.refresh_from_db()
        assert not support_user.is_superuser

    def test_cannot_add_change_or_delete_workspaces(self, support_client, workspace, admin_user):
        assert support_client.get(url(Workspace, "add")).status_code == 403
        assert support_client.get(url(Workspace, "delete", workspace.pk)).status_code == 403
        response = support_client.post(url(Workspace, "delete", workspace.pk), {"post": "yes"})
        assert response.status_code == 403
        response = support_client.post(
            url(Workspace, "change", workspace.pk), {"name": "Renamed", "slug": "acme"}
        )
        assert response.status_code == 403
        assert Workspace.objects.get(pk=workspace.pk).name == "Acme"


class TestNoSecretOnAnyPage:
    def test_every_page_of_every_model(self, support_client, sentinel_llm_key, workspace):
        pages = ["/admin/", "/admin/llm_keys/", "/admin/credits/", "/admin/workspaces/"]
        objects = [
            workspace,
            sentinel_llm_key,
            KeyEvent.objects.filter(workspace=workspace).first(),
            CreditEntry.objects.filter(workspace=workspace).first(),
            AIRequest.objects.filter(workspace=workspace).first(),
        ]
        for obj in objects:
            model = type(obj)
            pages += [
                url(model, "changelist"),
                url(model, "changelist") + "?q=acme",
                url(model, "changelist") + f"?q={SENTINEL_KEY[-10:]}",
                url(model, "change", obj.pk),
                url(model, "history", obj.pk),
            ]
        pages += [
            url(LLMKey, "changelist") + "?status__exact=unverified&provider__exact=anthropic",
            url(LLMKey, "delete", sentinel_llm_key.pk),
            url(CreditEntry, "grant") + f"?workspace={workspace.pk}",
        ]
        for page in pages:
            response = support_client.get(page)
            assert response.status_code == 200, page
            assert_no_secret(response.content, sentinel_llm_key, page)

    def test_the_workspace_page_shows_members_key_status_balance_and_requests(
        self, support_client, sentinel_llm_key, workspace
    ):
        page = support_client.get(url(Workspace, "change", workspace.pk)).content.decode()
        assert "admin@example.com" in page
        assert "sk-ant-…AbCd" in page
        assert "Unverified" in page
        assert "4,880" in page  # 5,000 granted, 120 used
        assert "claude-sonnet-5" in page
        assert "Key rejected by the provider" in page
        assert "Grant credits" in page
        assert 'name="name"' not in page  # view only

    def test_the_key_page_shows_the_mask_status_and_no_key_field(
        self, support_client, sentinel_llm_key
    ):
        page = support_client.get(url(LLMKey, "change", sentinel_llm_key.pk)).content.decode()
        assert "sk-ant-…AbCd" in page
        assert "Saved without a check." in page
        form = page.split('id="llmkey_form"')[1].split("</form>")[0]
        names = set(re.findall(r'<(?:input|textarea|select)[^>]*name="([^"]+)"', form))
        assert names <= {"csrfmiddlewaretoken"}
        assert "ciphertext" not in page.lower()
        assert "<textarea" not in page

    def test_no_way_to_type_a_key(self, support_client, admin_user, sentinel_llm_key):
        assert support_client.get("/admin/llm_keys/llmkey/add/").status_code == 403
        superuser = UserFactory(is_staff=True, is_superuser=True)
        support_client.force_login(superuser)
        assert support_client.get("/admin/llm_keys/llmkey/add/").status_code == 403
        response = support_client.post(
            url(LLMKey, "change", sentinel_llm_key.pk),
            {"ciphertext": "x", "status": "valid", "hint": "zzzz"},
        )
        assert response.status_code == 403
        assert LLMKey.objects.get().hint == "AbCd"

    def test_a_lookup_on_the_ciphertext_is_refused(self, support_client, sentinel_llm_key):
        prefix = bytes(sentinel_llm_key.ciphertext)[:1].hex()
        response = support_client.get(
            url(LLMKey, "changelist") + f"?ciphertext__startswith={prefix}"
        )
        assert response.status_code == 400


class TestKeyActions:
    def test_check_now_records_the_staff_member(
        self, support_client, support_user, sentinel_llm_key, standin
    ):
        response = support_client.post(
            url(LLMKey, "changelist"),
            {"action": "check_now", "_selected_action": [sentinel_llm_key.pk]},
            follow=True,
        )
        page = response.content.decode()
        assert "Acme: unverified → valid: Accepted by Anthropic." in page
        assert standin.keys_seen() == [SENTINEL_KEY]
        assert LLMKey.objects.get().status == KeyStatus.VALID
        event = KeyEvent.objects.filter(workspace=sentinel_llm_key.workspace).first()
        assert (event.action, event.actor) == (KeyEvent.Action.BECAME_VALID, support_user)
        entry = LogEntry.objects.get(user=support_user)
        assert (
            entry.get_change_message() == "Checked now: unverified → valid: Accepted by Anthropic."
        )
        history = support_client.get(url(LLMKey, "history", sentinel_llm_key.pk))
        assert "Checked now" in history.content.decode()
        for text in (page, history.content, entry.change_message, entry.object_repr):
            assert_no_secret(text, sentinel_llm_key, "check now")

    def test_check_now_of_a_revoked_key_marks_it_invalid(
        self, support_client, workspace, admin_user, standin
    ):
        from llm_keys.services import Actor, llm_key_set
        from tests.factories import fake_key

        llm_key = llm_key_set(
            workspace=workspace,
            raw_key=fake_key("revoked"),
            actor=Actor(user=admin_user),
            check=False,
        )
        response = support_client.post(
            url(LLMKey, "changelist"),
            {"action": "check_now", "_selected_action": [llm_key.pk]},
            follow=True,
        )
        assert "unverified → invalid" in response.content.decode()
        assert LLMKey.objects.get().status == KeyStatus.INVALID

    def test_remove_key_asks_first_then_removes_through_the_service(
        self, support_client, support_user, sentinel_llm_key
    ):
        confirm = support_client.post(
            url(LLMKey, "changelist"),
            {"action": "delete_selected", "_selected_action": [sentinel_llm_key.pk]},
        )
        assert confirm.status_code == 200
        assert "Are you sure" in confirm.content.decode()
        assert_no_secret(confirm.content, sentinel_llm_key, "remove confirmation")
        assert LLMKey.objects.exists()
        done = support_client.post(
            url(LLMKey, "changelist"),
            {"action": "delete_selected", "_selected_action": [sentinel_llm_key.pk], "post": "yes"},
            follow=True,
        )
        assert done.status_code == 200
        assert not LLMKey.objects.exists()
        event = KeyEvent.objects.get(action=KeyEvent.Action.REMOVED)
        assert event.actor == support_user
        assert_no_secret(done.content, sentinel_llm_key, "after removal")
        history = support_client.get(url(Workspace, "history", sentinel_llm_key.workspace_id))
        assert history.status_code == 200
        for entry in LogEntry.objects.all():
            assert_no_secret(entry.change_message + entry.object_repr, sentinel_llm_key, "log")

    def test_remove_key_is_offered_under_that_name(self, support_client, sentinel_llm_key):
        page = support_client.get(url(LLMKey, "changelist")).content.decode()
        assert ">Remove key<" in page
        assert ">Check now<" in page

    def test_the_delete_page_removes_through_the_service(
        self, support_client, support_user, sentinel_llm_key
    ):
        page = support_client.get(url(LLMKey, "delete", sentinel_llm_key.pk))
        assert page.status_code == 200
        response = support_client.post(url(LLMKey, "delete", sentinel_llm_key.pk), {"post": "yes"})
        assert response.status_code == 302
        assert KeyEvent.objects.get(action="removed").actor == support_user


class TestLedger:
    def test_entries_cannot_be_added_changed_or_deleted(self, support_client, sentinel_llm_key):
        entry = CreditEntry.objects.first()
        assert support_client.get(url(CreditEntry, "add")).status_code == 403
        change = support_client.get(url(CreditEntry, "change", entry.pk)).content.decode()
        assert 'name="_save"' not in change
        assert (
            support_client.post(url(CreditEntry, "change", entry.pk), {"amount": 9}).status_code
            == 403
        )
        assert support_client.get(url(CreditEntry, "delete", entry.pk)).status_code == 403
        assert (
            support_client.post(url(CreditEntry, "delete", entry.pk), {"post": "yes"}).status_code
            == 403
        )
        listing = support_client.get(url(CreditEntry, "changelist")).content.decode()
        assert "delete_selected" not in listing
        assert CreditEntry.objects.get(pk=entry.pk).amount == entry.amount

    def test_grant_credits_with_a_reason(self, support_client, support_user, workspace):
        form = support_client.get(url(CreditEntry, "grant") + f"?workspace={workspace.pk}")
        token = form.context["form"].initial["token"]
        data = {
            "workspace": workspace.pk,
            "amount": "2500",
            "reason": "Goodwill: outage",
            "token": token,
        }
        # The first submit shows what the grant will do and grants nothing yet.
        confirm = support_client.post(url(CreditEntry, "grant"), data).content.decode()
        assert "data-grant-confirm" in confirm
        assert 'data-balance-before="0"' in confirm and 'data-balance-after="2500"' in confirm
        assert not CreditEntry.objects.exists()
        data["confirmed"] = "True"
        response = support_client.post(url(CreditEntry, "grant"), data, follow=True)
        assert (
            "Granted 2,500 credits to Acme. New balance: 2,500 credits."
            in response.content.decode()
        )
        entry = CreditEntry.objects.get()
        assert (entry.kind, entry.amount, entry.reason, entry.actor) == (
            "grant",
            2500,
            "Goodwill: outage",
            support_user,
        )
        # The same form submitted twice grants once.
        support_client.post(url(CreditEntry, "grant"), data)
        assert CreditEntry.objects.count() == 1

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_granting_without_a_reason_is_refused(self, support_client, workspace, reason):
        response = support_client.post(
            url(CreditEntry, "grant"),
            {"workspace": workspace.pk, "amount": "100", "reason": reason},
        )
        assert response.status_code == 200
        assert response.context["form"].errors["reason"]
        assert not CreditEntry.objects.exists()

    def test_the_grant_form_shows_the_balance_and_one_credit_is_singular(
        self, support_client, workspace
    ):
        credits_grant(workspace=workspace, amount=1_234, reason="Test")
        form = support_client.get(url(CreditEntry, "grant") + f"?workspace={workspace.pk}")
        assert "1,234 credits</strong> now" in form.content.decode()
        data = {"workspace": workspace.pk, "amount": "1", "reason": "x", "confirmed": "True"}
        response = support_client.post(url(CreditEntry, "grant"), data, follow=True)
        assert "Granted 1 credit to Acme." in response.content.decode()

    def test_settled_holds_do_not_read_as_credits_added(self, support_client, workspace):
        credits_grant(workspace=workspace, amount=1_000, reason="Test")
        hold = credits_hold(workspace=workspace, amount=100, idempotency_key="r1")
        credits_settle(hold=hold, amount=40)
        listing = support_client.get(url(CreditEntry, "changelist")).content.decode()
        assert "60 of the hold returned (charged 40)" in listing
        assert "-100 held" in listing and "+1,000" in listing
        assert "+60" not in listing

    @pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.5", "1000001"])
    def test_granting_a_bad_amount_is_refused(self, support_client, workspace, amount):
        response = support_client.post(
            url(CreditEntry, "grant"), {"workspace": workspace.pk, "amount": amount, "reason": "x"}
        )
        assert response.context["form"].errors["amount"]
        assert not CreditEntry.objects.exists()

    def test_staff_without_the_grant_permission_cannot_grant(self, client, workspace):
        staff = UserFactory(is_staff=True)
        client.force_login(staff)
        response = client.post(
            url(CreditEntry, "grant"), {"workspace": workspace.pk, "amount": "100", "reason": "x"}
        )
        assert response.status_code == 403
        assert not CreditEntry.objects.exists()


class TestReadOnlyLogs:
    def test_key_events_and_ai_requests_are_searchable_and_read_only(
        self, support_client, sentinel_llm_key
    ):
        other = WorkspaceFactory(name="Globex", slug="globex")
        MembershipFactory(workspace=other)
        AIRequest.objects.create(
            workspace=other,
            provider="anthropic",
            model="claude-haiku",
            credential_source="platform",
            outcome="ok",
        )
        requests = support_client.get(url(AIRequest, "changelist") + "?q=globex").content.decode()
        assert "claude-haiku" in requests and "claude-sonnet-5" not in requests
        events = support_client.get(url(KeyEvent, "changelist") + "?q=acme").content.decode()
        assert "Key set" in events
        for model in (KeyEvent, AIRequest):
            obj = model.objects.first()
            assert support_client.get(url(model, "add")).status_code == 403
            assert support_client.get(url(model, "delete", obj.pk)).status_code == 403
            assert support_client.post(url(model, "change", obj.pk), {}).status_code == 403
