"""Every aria-describedby on the workspace pages names an element the page has: a screen
reader reads a field's help or error through it, and a dangling id reads nothing."""

import re

import pytest

PAGES = [
    "/w/acme/settings/api-tokens/",
    "/w/acme/settings/llm-key/",
    "/w/acme/settings/members/",
    "/w/acme/usage/",
    "/w/acme/ai/",
]


@pytest.mark.parametrize("url", PAGES)
def test_every_described_by_id_exists(admin_client, url):
    html = admin_client.get(url).content.decode()
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    named = {i for value in re.findall(r'aria-describedby="([^"]*)"', html) for i in value.split()}
    assert named - ids == set()


def test_the_token_forms_error_is_described_too(admin_client):
    html = admin_client.post("/w/acme/settings/api-tokens/", {"name": ""}).content.decode()
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    named = {i for value in re.findall(r'aria-describedby="([^"]*)"', html) for i in value.split()}
    assert named and named - ids == set()
