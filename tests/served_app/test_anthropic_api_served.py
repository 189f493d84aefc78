"""The Anthropic-compatible API (SPEC §13) through ``make serve``, with the official SDK as
the client, unchanged: ``Anthropic(base_url=<site>/anthropic, api_key=<workspace token>)``.

Credentials resolve as SPEC §7 says: a workspace key is used (no credits), an invalid one
refuses at once, no key means the platform key and AI credits.
"""

import base64
import json

import anthropic
import httpx2
import pytest

from api_tokens.models import PREFIX_LENGTH
from tests.served import PLATFORM_KEY

pytestmark = pytest.mark.served

MODEL = "claude-sonnet-5"
BYOK_KEY = "sk-ant-api03-served0token0byok0key000000000000000000000WXYZ"
OTHER_KEY = "sk-ant-api03-served0token0other0key00000000000000000000QRST"
REVOKED_KEY = "sk-ant-api03-served0token0gone0key0000000000000000-revoked"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city's name."}},
        "required": ["city"],
    },
}
# A 1x1 PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


@pytest.fixture(scope="module")
def tokens(served):
    """Workspaces in each state of SPEC §7, each with an API token."""
    app = served
    made = {}
    for slug in ("tok-byok", "tok-credits", "tok-invalid", "tok-other", "tok-revoked"):
        app.workspace(slug, admin=f"admin@{slug}.test")
    app.manage("set_llm_key", "tok-byok", "--no-check", stdin=BYOK_KEY + "\n")
    app.manage("set_llm_key", "tok-other", "--no-check", stdin=OTHER_KEY + "\n")
    app.manage("grant_credits", "tok-credits", "5000000", "--reason", "served test")
    app.manage("set_llm_key", "tok-invalid", "--no-check", stdin=REVOKED_KEY + "\n")
    app.manage("check_llm_keys", "tok-invalid", expect_ok=False)  # Anthropic refuses it
    for slug in ("tok-byok", "tok-credits", "tok-invalid", "tok-other", "tok-revoked"):
        made[slug] = app.api_token(slug, "ci job")
    app.manage("revoke_api_token", "tok-revoked", "ci job")
    return made


def sdk(app, token, **options):
    return anthropic.Anthropic(
        base_url=f"{app.url}/anthropic", api_key=token, max_retries=0, **options
    )


def messages_sent(standin):
    return [r for r in standin.requests if r.path == "/v1/messages"]


def test_messages_create_uses_the_workspace_key_and_charges_nothing(served, tokens, standin):
    client = sdk(served, tokens["tok-byok"])

    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    )
    message = raw.parse()

    assert message.content[0].text == "Stand-in reply to: Hello there"
    assert message.usage.input_tokens > 0
    assert raw.headers["x-credential-source"] == "byok"
    assert raw.headers["x-credits-charged"] == "0"
    assert raw.headers["request-id"].startswith("req_standin_")
    assert any(name.startswith("anthropic-ratelimit-") for name in raw.headers)
    assert [r.api_key for r in messages_sent(standin)] == [BYOK_KEY]


def test_credits_workspace_pays_with_the_platform_key(served, tokens, standin):
    client = sdk(served, tokens["tok-credits"])

    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    )

    assert raw.headers["x-credential-source"] == "platform"
    assert int(raw.headers["x-credits-charged"]) > 0
    # The platform account's rate limits are not the workspace's to see.
    assert not any(name.startswith("anthropic-ratelimit-") for name in raw.headers)
    assert [r.api_key for r in messages_sent(standin)] == [PLATFORM_KEY]
    [(name, charged)] = served.database.rows(
        "SELECT t.name, r.credits_charged FROM ai_gateway_airequest r"
        " JOIN api_tokens_apitoken t ON t.id = r.api_token_id"
        " JOIN workspaces_workspace w ON w.id = r.workspace_id WHERE w.slug = 'tok-credits'"
        " AND r.stream = false"
    )
    assert (name, charged) == ("ci job", int(raw.headers["x-credits-charged"]))


def test_the_sdk_stream_accumulates_the_same_message_as_a_plain_call(served, tokens, standin):
    client = sdk(served, tokens["tok-byok"])
    request = dict(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Stream it, please"}]
    )

    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
        text = "".join(stream.text_stream)
    plain = client.messages.create(**request)

    assert final.model_dump(exclude={"id"}) == plain.model_dump(exclude={"id"})
    assert text == ""  # the accumulator already consumed every event
    assert final.stop_reason == "end_turn"
    assert [r.body.get("stream", False) for r in messages_sent(standin)] == [True, False]


def test_a_two_turn_tool_use_round_trip(served, tokens, standin):
    client = sdk(served, tokens["tok-credits"])
    question = [{"role": "user", "content": "What is the weather in Lyon?"}]

    first = client.messages.create(
        model=MODEL, max_tokens=200, tools=[WEATHER_TOOL], messages=question
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    assert first.stop_reason == "tool_use"
    assert tool_use.name == "get_weather"
    second = client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            *question,
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "Sunny, 21 °C"}
                ],
            },
        ],
    )

    assert second.stop_reason == "end_turn"
    sent = messages_sent(standin)
    assert [r.body["tools"] for r in sent] == [[WEATHER_TOOL], [WEATHER_TOOL]]
    assert sent[1].body["messages"][2]["content"][0]["tool_use_id"] == tool_use.id


def test_an_image_block_and_the_api_headers_pass_through(served, tokens, standin):
    client = sdk(served, tokens["tok-byok"])

    client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                    {"type": "text", "text": "What is in this picture?"},
                ],
            }
        ],
        extra_body={"temperature": 0.3},
        extra_headers={"anthropic-beta": "some-beta-2026-01-01", "anthropic-version": "2023-06-01"},
    )

    [sent] = messages_sent(standin)
    assert sent.body["messages"][0]["content"][0]["source"]["data"] == PIXEL
    assert sent.body["temperature"] == 0.3
    assert (sent.anthropic_beta, sent.anthropic_version) == ("some-beta-2026-01-01", "2023-06-01")


def test_count_tokens_and_models_use_the_workspace_key(served, tokens, standin):
    client = sdk(served, tokens["tok-byok"])

    counted = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "How many tokens is this?"}]
    )
    models = client.models.list()

    assert counted.input_tokens > 0
    assert [model.id for model in models.data][:1] == [MODEL]
    assert {r.path: r.api_key for r in standin.requests} == {
        "/v1/messages/count_tokens": BYOK_KEY,
        "/v1/models": BYOK_KEY,
    }
    assert served.database.rows(
        "SELECT count(*) FROM credits_creditentry e JOIN workspaces_workspace w"
        " ON w.id = e.workspace_id WHERE w.slug = 'tok-byok'"
    ) == [(0,)]


@pytest.mark.parametrize("token", ["byok_notreal_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", ""])
def test_a_bad_token_raises_the_sdks_authentication_error(served, tokens, standin, token):
    with pytest.raises(anthropic.AuthenticationError) as raised:
        sdk(served, token or "x").messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.status_code == 401
    assert raised.value.body["error"]["type"] == "authentication_error"
    assert standin.requests == []


def test_a_revoked_token_is_refused_at_once(served, tokens, standin):
    with pytest.raises(anthropic.AuthenticationError):
        sdk(served, tokens["tok-revoked"]).models.list()
    assert standin.requests == []


def test_an_invalid_workspace_key_is_refused_without_a_call_or_credits(served, tokens, standin):
    client = sdk(served, tokens["tok-invalid"])

    with pytest.raises(anthropic.ConflictError) as raised:
        client.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )

    assert raised.value.status_code == 409
    assert raised.value.body["error"]["type"] == "llm_key_invalid"
    assert "Workspace Settings" in raised.value.body["error"]["message"]
    assert standin.requests == []
    with pytest.raises(anthropic.ConflictError):
        client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert standin.requests == []


def test_a_token_only_ever_reaches_its_own_workspaces_credentials(served, tokens, standin):
    sdk(served, tokens["tok-other"]).messages.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    sdk(served, tokens["tok-byok"]).messages.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )

    assert [r.api_key for r in messages_sent(standin)] == [OTHER_KEY, BYOK_KEY]


def test_the_token_endpoint_ignores_cookies_and_needs_no_csrf(served, tokens, standin):
    browser = served.login("admin@tok-byok.test")
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}

    with_cookie_only = browser.post("/anthropic/v1/messages", json=body)
    with_token = httpx2.post(
        f"{served.url}/anthropic/v1/messages",
        json=body,
        headers={"authorization": f"Bearer {tokens['tok-byok']}"},
        cookies=browser.cookies,
    )

    assert with_cookie_only.status_code == 401
    assert with_cookie_only.json()["error"]["type"] == "authentication_error"
    assert with_token.status_code == 200, with_token.text
    assert with_token.headers["x-credential-source"] == "byok"


def test_bad_json_is_a_400_in_anthropics_envelope(served, tokens, standin):
    headers = {"x-api-key": tokens["tok-credits"], "content-type": "application/json"}
    deep = '{"model": "x", "max_tokens": 1, "messages": ' + "[" * 50_000 + "]" * 50_000 + "}"
    cases = [
        "{not json",
        deep,
        json.dumps(
            {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "\ud800"}]}
        ),
        json.dumps(
            {"model": "m" * 300, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
        ),
    ]
    for raw in cases:
        response = httpx2.post(f"{served.url}/anthropic/v1/messages", content=raw, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert standin.requests == []


def test_the_token_never_appears_in_the_servers_log_or_usage_rows(served, tokens, standin):
    client = sdk(served, tokens["tok-credits"])
    client.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError):
        sdk(served, tokens["tok-revoked"]).messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )

    log = served.log()
    rows = served.database.rows("SELECT * FROM ai_gateway_airequest")
    for token in tokens.values():
        # The secret is all that follows the prefix and its "_" (and may hold "_" itself:
        # the last part alone was sometimes a single letter, found in any log).
        secret = token[PREFIX_LENGTH + 1 :]
        assert len(secret) == 43
        assert secret not in log
        assert secret not in repr(rows)
    assert BYOK_KEY not in log and PLATFORM_KEY not in log
