"""The settings form never repeats a key-shaped value typed where it does not belong."""

import pytest

from tests.conftest import SENTINEL_KEY

URL = "/w/acme/settings/llm-key/"


@pytest.mark.django_db
def test_the_outsider_and_the_member_are_refused(outsider_client, member_client):
    assert outsider_client.post(URL, {"provider": SENTINEL_KEY}).status_code == 404
    assert member_client.post(URL, {"provider": SENTINEL_KEY}).status_code == 403


@pytest.mark.django_db
def test_a_key_typed_as_provider_is_not_echoed(admin_client):
    response = admin_client.post(URL, {"provider": SENTINEL_KEY, "api_key": "sk-ant-api03-x"})
    assert response.status_code == 400  # the page again, with the form's error
    text = response.content.decode()
    assert "That provider is not supported: choose one from the list." in text
    assert SENTINEL_KEY not in text
    assert SENTINEL_KEY[10:30] not in text
