"""Every billable dimension priced, or refused on credits (issue 19, items 4 and 6), through
``make serve`` with the official SDK as the client and the stand-in billing as Anthropic
documents: the charge is what the provider's usage says at the price table's rates."""

import anthropic
import pytest

from tests.served import PLATFORM_KEY

pytestmark = pytest.mark.served

BYOK_KEY = "sk-ant-api03-served0pricing0byok0key00000000000000000000PRCE"
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def tokens(served):
    made = {}
    for slug in ("price-credits", "price-byok"):
        served.workspace(slug, admin=f"admin@{slug}.test")
        made[slug] = served.api_token(slug, "pricing")
    served.manage("set_llm_key", "price-byok", "--no-check", stdin=BYOK_KEY + "\n")
    served.manage("grant_credits", "price-credits", "50000000", "--reason", "served test")
    return made


def sdk(app, token):
    return anthropic.Anthropic(base_url=f"{app.url}/anthropic", api_key=token, max_retries=0)


def messages_sent(standin):
    return [r for r in standin.requests if r.path == "/v1/messages"]


def last_row(served, slug):
    return served.database.rows(
        "SELECT r.outcome, r.credits_charged, r.input_tokens, r.output_tokens"
        " FROM ai_gateway_airequest r JOIN workspaces_workspace w ON w.id = r.workspace_id"
        f" WHERE w.slug = '{slug}' ORDER BY r.id DESC LIMIT 1"
    )[0]


def rows_of(served, slug):
    return served.database.rows(
        "SELECT count(*) FROM ai_gateway_airequest r"
        f" JOIN workspaces_workspace w ON w.id = r.workspace_id WHERE w.slug = '{slug}'"
    )[0][0]


@pytest.mark.parametrize(
    "override",
    [
        {"input_tokens": None},
        {"input_tokens": "12"},
        {"output_tokens": -5},
        {"input_tokens": 10**15},
        {"output_tokens": 2**63},
    ],
    ids=["missing", "string", "negative", "huge", "huge64"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_garbled_usage_never_breaks_the_answer(served, tokens, standin, override, stream):
    standin.set_usage_override(override)
    client = sdk(served, tokens["price-credits"])
    before = rows_of(served, "price-credits")

    if stream:
        with client.messages.stream(model="claude-sonnet-5", max_tokens=64, messages=HELLO) as s:
            text = "".join(s.text_stream)
    else:
        text = (
            client.messages.create(model="claude-sonnet-5", max_tokens=64, messages=HELLO)
            .content[0]
            .text
        )

    assert text == "Stand-in reply to: Hello"
    # One usage row, with counts a database column can hold (never a 500 on the insert).
    assert rows_of(served, "price-credits") == before + 1
    _, charged, input_tokens, output_tokens = last_row(served, "price-credits")
    assert 0 <= input_tokens < 2**31 and 0 <= output_tokens < 2**31
    assert charged >= 0
    assert PLATFORM_KEY in [r.api_key for r in messages_sent(standin)]
