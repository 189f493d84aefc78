"""POST /api/v1/w/<slug>/messages: who may call it, CSRF, bad requests (400, no charge)."""

import json

import pytest
from django.test import Client

from ai_gateway.models import AIRequest
from credits.selectors import credits_balance
from tests.factories import MembershipFactory

from .helpers import API, MODEL, body, ledger, post


def test_outsider_gets_404_json(outsider_client, workspace, funded, standin):
    response = post(outsider_client, body())

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert standin.requests == []
    assert not AIRequest.objects.exists()


def test_unknown_workspace_gets_the_same_404(member_client, standin):
    response = post(member_client, body(), path="/api/v1/w/nope/messages")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_anonymous_gets_401_json_not_a_redirect(client, workspace, funded, standin):
    response = post(client, body())

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "authentication_error"
    assert standin.requests == []


def test_get_is_405(member_client):
    response = member_client.get(API)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.parametrize("role", ["member", "admin"])
def test_members_and_admins_may_call_it(workspace, funded, standin, role):
    user = MembershipFactory(workspace=workspace, role=role).user
    client = Client()
    client.force_login(user)

    response = post(client, body())

    assert response.status_code == 200
    assert AIRequest.objects.get().user == user


def test_csrf_is_enforced(member_user, workspace, funded, standin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_user)

    refused = post(client, body())

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "csrf_failed"
    assert "X-CSRFToken" in error["message"]
    assert standin.requests == []
    assert ledger(workspace) == [("grant", funded)]

    client.get(f"/w/{workspace.slug}/ai/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = post(client, body(), headers={"X-CSRFToken": token})
    assert accepted.status_code == 200


def test_a_page_refused_by_csrf_gets_djangos_page_not_json(member_user, workspace):
    """The site's CSRF_FAILURE_VIEW answers JSON only under /api/."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(member_user)

    refused = client.post(f"/w/{workspace.slug}/ai/", {"prompt": "Hi"})

    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("text/html")
    assert "CSRF verification failed" in refused.content.decode()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 10}, "messages"),
        (body(model=42), "'model'"),
        (body(max_tokens="100"), "whole number"),
        (body(max_tokens=1.5), "whole number"),
        (body(max_tokens=True), "whole number"),
        (body(max_tokens=0), "at least 1"),
        (body(max_tokens=-5), "at least 1"),
        (body(max_tokens=10_000_000), "above the limit"),
        (body(messages=[]), "non-empty list"),
        (body(messages="hello"), "non-empty list"),
        (body(stream="yes"), "'stream'"),
        (body(model="claude-" + "x" * 100), "too long"),
        (body(messages=[{"role": "user", "content": "\ud800 lone"}]), "surrogate"),
        (body(messages=[{"role": "user", "content": "nul \u0000 inside"}]), "NUL"),
        (body(metadata={"user_id": "\udfff"}), "surrogate"),
        (body(model="claude-unknown-1"), "not available with AI credits"),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_bad_requests_are_400_with_a_message_and_charge_nothing(
    member_client, workspace, funded, standin, payload, message
):
    response = post(member_client, payload)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]
    assert standin.requests == []
    assert ledger(workspace) == [("grant", funded)]
    assert credits_balance(workspace=workspace) == funded


def test_json_nested_past_the_recursion_limit_is_400(member_client, workspace, funded, standin):
    deep = '{"model": "x", "max_tokens": 1, "messages": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = post(member_client, deep)

    assert response.status_code == 400
    assert "must be JSON" in response.json()["error"]["message"]
    assert standin.requests == []
    assert not AIRequest.objects.exists()


def test_fields_the_gateway_does_not_know_go_to_the_provider(
    member_client, workspace, funded, standin
):
    response = post(member_client, body(temperature=0.2, top_k=5, stop_sequences=["END"]))

    assert response.status_code == 200, response.content
    sent = [r.body for r in standin.requests if r.path == "/v1/messages"]
    assert sent[0]["temperature"] == 0.2
    assert sent[0]["top_k"] == 5
    assert sent[0]["stop_sequences"] == ["END"]


def test_non_json_body_is_400(member_client, workspace, funded, standin):
    response = member_client.post(API, "model=x&max_tokens=1", content_type="text/plain")

    assert response.status_code == 400
    assert "must be JSON" in response.json()["error"]["message"]
    assert ledger(workspace) == [("grant", funded)]


def test_oversized_body_is_413(member_client, workspace, funded, standin, settings):
    settings.AI_REQUEST_MAX_BODY_BYTES = 2_000
    big = body(messages=[{"role": "user", "content": "x" * 5_000}])

    response = post(member_client, json.dumps(big))

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert "too large" in response.json()["error"]["message"]
    assert standin.requests == []
    assert ledger(workspace) == [("grant", funded)]


def test_max_tokens_limit_applies_on_byok_for_known_models(
    member_client, workspace, saved_key, standin
):
    response = post(member_client, body(max_tokens=10_000_000))

    assert response.status_code == 400
    assert [r for r in standin.requests if r.path == "/v1/messages"] == []


def test_a_database_that_cannot_be_reached_answers_503_json(
    member_client, workspace, funded, standin, monkeypatch
):
    from django.db import OperationalError

    from ai_gateway import views

    def unreachable(*args, **kwargs):
        raise OperationalError("couldn't get a connection after 10.00 sec")

    monkeypatch.setattr(views, "get_member_context", unreachable)

    response = post(member_client, body())

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "service_unavailable"
    assert "Nothing was charged" in error["message"]
    assert standin.requests == []
