"""Support staff see every provider's keys in the admin (SPEC §10, §18): masked in each
provider's shape, filtered by provider, checked with the right provider, never in plaintext."""

from django.urls import reverse

from llm_keys.models import LLMKey
from llm_keys.services import Actor, llm_key_set
from tests.conftest import GEMINI_SENTINEL_KEY, OPENAI_SENTINEL_KEY

CHANGELIST = reverse("admin:llm_keys_llmkey_changelist")


def _store(workspace, admin_user):
    actor = Actor(user=admin_user)
    for provider, raw in (("openai", OPENAI_SENTINEL_KEY), ("gemini", GEMINI_SENTINEL_KEY)):
        llm_key_set(workspace=workspace, provider=provider, raw_key=raw, actor=actor, check=False)


def test_outsiders_and_members_do_not_reach_the_key_list(member_client, workspace, admin_user):
    _store(workspace, admin_user)
    response = member_client.get(CHANGELIST)
    assert response.status_code == 302  # to the admin's login: not staff
    assert OPENAI_SENTINEL_KEY not in response.content.decode()


def test_support_sees_each_key_masked_in_its_shape_and_filters_by_provider(
    support_client, workspace, admin_user
):
    _store(workspace, admin_user)
    page = support_client.get(CHANGELIST).content.decode()
    assert f"sk-…{OPENAI_SENTINEL_KEY[-4:]}" in page
    assert f"AIza…{GEMINI_SENTINEL_KEY[-4:]}" in page
    assert OPENAI_SENTINEL_KEY not in page and GEMINI_SENTINEL_KEY not in page

    only_gemini = support_client.get(CHANGELIST, {"provider__exact": "gemini"}).content.decode()
    assert f"AIza…{GEMINI_SENTINEL_KEY[-4:]}" in only_gemini
    assert f"sk-…{OPENAI_SENTINEL_KEY[-4:]}" not in only_gemini


def test_check_now_in_the_admin_asks_the_keys_own_provider(
    support_client, workspace, admin_user, gemini_standin, openai_standin, standin
):
    _store(workspace, admin_user)
    gemini_key = LLMKey.objects.get(provider="gemini")
    gemini_standin.set_behavior(GEMINI_SENTINEL_KEY, "revoked")
    response = support_client.post(
        reverse("admin:llm_keys_llmkey_check", args=[gemini_key.pk]), follow=True
    )
    assert response.status_code == 200
    gemini_key.refresh_from_db()
    assert gemini_key.status == "invalid"
    assert gemini_standin.keys_seen() == [GEMINI_SENTINEL_KEY]
    assert openai_standin.requests == [] and standin.requests == []
    assert GEMINI_SENTINEL_KEY not in response.content.decode()
