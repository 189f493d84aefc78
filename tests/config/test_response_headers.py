"""Every answer carries a Content-Security-Policy; signed-in pages and API answers are never
stored (Cache-Control: no-store); HSTS is on by default behind a TLS proxy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()
    }


@pytest.mark.django_db
def test_the_login_page_has_a_strict_csp():
    response = Client().get("/login/")
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_outsider_and_the_member_refused_pages_are_not_stored_either(
    outsider_client, member_client
):
    refused = outsider_client.get("/w/acme/settings/llm-key/")
    assert refused.status_code == 404
    assert "no-store" in refused["Cache-Control"]
    member_refused = member_client.get("/w/acme/settings/llm-key/")
    assert member_refused.status_code == 403
    assert "no-store" in member_refused["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/", "/w/acme/", "/w/acme/settings/llm-key/", "/w/acme/usage/", "/w/acme/ai/"]
)
def test_signed_in_pages_are_never_stored(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert "Content-Security-Policy" in response


@pytest.mark.django_db
def test_api_answers_are_never_stored_even_errors(admin_client):
    response = admin_client.post(
        "/api/v1/w/acme/messages", data=json.dumps({"model": ""}), content_type="application/json"
    )
    assert response.status_code == 400
    assert "no-store" in response["Cache-Control"]
    anonymous = Client().post("/api/v1/w/acme/messages", data="{}", content_type="application/json")
    assert "no-store" in anonymous["Cache-Control"]


@pytest.mark.django_db
def test_the_admin_is_not_stored(admin_client, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def _setting(name: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LLM_KEY_"))}
    environment.update(DJANGO_READ_DOT_ENV="false", DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = f"from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_hsts_is_on_by_default_behind_a_tls_proxy():
    assert _setting("SECURE_HSTS_SECONDS", DJANGO_BEHIND_TLS_PROXY="true") == str(365 * 86400)
    assert _setting("SECURE_HSTS_SECONDS") == "0"
    assert (
        _setting("SECURE_HSTS_SECONDS", DJANGO_BEHIND_TLS_PROXY="true", DJANGO_HSTS_SECONDS="0")
        == "0"
    )
