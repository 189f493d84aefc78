"""The browser's API refuses on credits what the price table cannot price, naming it, before
the provider is called; the workspace's own key passes it on (decision 114)."""

from ai_gateway.models import AIRequest
from credits.selectors import credits_balance
from llm_keys.services import Actor, llm_key_set
from tests.ai_gateway.helpers import body, ledger, post
from tests.factories import fake_key

BETA = {"HTTP_ANTHROPIC_BETA": "brand-new-feature-2027-01-01"}


def test_an_unknown_beta_is_refused_on_credits_before_the_provider(
    member_client, workspace, funded, standin
):
    response = post(member_client, body(), **BETA)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "anthropic-beta 'brand-new-feature-2027-01-01'" in error["message"]
    assert "own Anthropic key" in error["message"]
    assert standin.requests == []
    assert [kind for kind, _ in ledger(workspace)] == ["grant"]  # nothing held
    assert credits_balance(workspace=workspace) == funded
    assert AIRequest.objects.get().outcome == "bad_request"


def test_an_unknown_beta_passes_on_the_workspace_key(member_client, workspace, standin):
    key = fake_key()
    llm_key_set(workspace=workspace, raw_key=key, actor=Actor(label="test"), check=False)

    response = post(member_client, body(), **BETA)

    assert response.status_code == 200, response.content
    [sent] = [r for r in standin.requests if r.path == "/v1/messages"]
    assert (sent.api_key, sent.anthropic_beta) == (key, "brand-new-feature-2027-01-01")
