"""The OpenAI- and Gemini-compatible APIs (SPEC §18) through ``make serve``, with the official
``openai`` and ``google-genai`` SDKs unchanged, against the loopback stand-ins.

Each provider's credentials resolve on their own (SPEC §7): the workspace's key for that
provider (no credits), else the platform's key on AI credits; an invalid key refuses that
provider only. Usage rows record the provider's own counts.
"""

import json
import math
import time

import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.served import make_serve_command, start

pytestmark = pytest.mark.served

OPENAI_BYOK = "sk-proj-served0openai0byok0key0000000000000000WXYZ"
OPENAI_PLATFORM = "sk-proj-served0openai0platform0key00000000000PLAT"
OPENAI_REVOKED = "sk-proj-served0openai0gone0key0000000000000-revoked"
GEMINI_BYOK = "AIza" + "ServedGeminiByokKey".ljust(35, "0")
GEMINI_PLATFORM = "AIza" + "ServedGeminiPlatformKey".ljust(35, "1")
OPENAI_GONE = "sk-proj-served0openai0unverified0key00000000-revoked"
GEMINI_GONE = "AIza" + "ServedGeminiGone-revoked".ljust(35, "0")
ANTHROPIC_BYOK = "sk-ant-api03-served0mixed0byok0key00000000000000000000MIXD"
# Credits per million tokens (config/settings.py, decision 148).
GPT_5_MINI = {"input": 2_500, "output": 20_000, "cache_read": 250}
GEMINI_FLASH = {"input": 3_000, "output": 25_000, "cache_read": 300}


def serve_with_providers(request, **extra_env):
    """``make serve`` with both providers' stand-ins and platform keys configured (and
    ``extra_env``), stopped after the module."""
    fixture = request.getfixturevalue
    served = start(
        make_serve_command,
        database=fixture("served_database"),
        standin_url=fixture("standin_server").url,
        log_path=fixture("tmp_path_factory").mktemp("served-log") / "server.log",
        extra_env={
            "OPENAI_BASE_URL": fixture("openai_standin_server").base_url,
            "PLATFORM_OPENAI_API_KEY": OPENAI_PLATFORM,
            "GEMINI_BASE_URL": fixture("gemini_standin_server").base_url,
            "PLATFORM_GEMINI_API_KEY": GEMINI_PLATFORM,
            **extra_env,
        },
    )
    request.addfinalizer(served.stop)
    return served


@pytest.fixture(scope="module")
def app(request):
    return serve_with_providers(request)


@pytest.fixture(scope="module")
def tokens(app, openai_standin_server):
    """One workspace on its own keys, one on AI credits, one whose OpenAI key is invalid but
    whose Anthropic key works."""
    for slug in ("pv-byok", "pv-credits", "pv-mixed", "pv-gone"):
        app.workspace(slug, admin=f"admin@{slug}.test")
    # Saved unchecked (unverified): the providers refuse them on the first request.
    app.manage("set_llm_key", "pv-gone", "--provider", "openai", "--no-check", stdin=OPENAI_GONE)
    app.manage("set_llm_key", "pv-gone", "--provider", "gemini", "--no-check", stdin=GEMINI_GONE)
    app.manage("set_llm_key", "pv-byok", "--provider", "openai", "--no-check", stdin=OPENAI_BYOK)
    app.manage("set_llm_key", "pv-byok", "--provider", "gemini", "--no-check", stdin=GEMINI_BYOK)
    app.manage("grant_credits", "pv-credits", "5000000", "--reason", "served test")
    app.manage("set_llm_key", "pv-mixed", "--no-check", stdin=ANTHROPIC_BYOK)
    app.manage(
        "set_llm_key", "pv-mixed", "--provider", "openai", "--no-check", stdin=OPENAI_REVOKED
    )
    # OpenAI refuses the key: it is marked invalid.
    app.manage("check_llm_keys", "pv-mixed", "--provider", "openai", expect_ok=False)
    slugs = ("pv-byok", "pv-credits", "pv-mixed", "pv-gone")
    return {slug: app.api_token(slug, "ci job") for slug in slugs}


def oai(app, token):
    return openai.OpenAI(base_url=f"{app.url}/openai/v1", api_key=token, max_retries=0)


def gem(app, token):
    return genai.Client(
        api_key=token,
        http_options=types.HttpOptions(
            base_url=f"{app.url}/gemini", retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


def last_row(app, slug, provider):
    [row] = app.database.rows(
        "SELECT r.credential_source, r.outcome, r.input_tokens, r.output_tokens,"
        " r.cache_read_input_tokens, r.credits_charged, r.stream"
        " FROM ai_gateway_airequest r JOIN workspaces_workspace w ON w.id = r.workspace_id"
        f" WHERE w.slug = '{slug}' AND r.provider = '{provider}'"
        " ORDER BY r.id DESC LIMIT 1"
    )
    keys = ("source", "outcome", "input", "output", "cache_read", "charged", "stream")
    return dict(zip(keys, row, strict=True))


def row_count(app, slug, provider):
    [(count,)] = app.database.rows(
        "SELECT count(*) FROM ai_gateway_airequest r"
        " JOIN workspaces_workspace w ON w.id = r.workspace_id"
        f" WHERE w.slug = '{slug}' AND r.provider = '{provider}'"
    )
    return count


def streamed_row(app, slug, provider, before=None, timeout=10.0):
    """The usage row of a stream the SDK has finished: it stops reading at ``[DONE]``, and
    the server writes the row just after, so wait (briefly) for it: a row past ``before``
    rows when given, else a last row that is a streamed request's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if before is not None:
            if row_count(app, slug, provider) > before:
                break
        else:
            try:
                row = last_row(app, slug, provider)
            except ValueError:  # no row yet
                row = None
            if row and row["stream"]:
                return row
        time.sleep(0.05)
    return last_row(app, slug, provider)


def balance(app, slug):
    [(value,)] = app.database.rows(
        "SELECT b.balance FROM credits_creditaccount b JOIN workspaces_workspace w"
        f" ON w.id = b.workspace_id WHERE w.slug = '{slug}'"
    )
    return value


def cost(prices, *, fresh, output, cached=0):
    micro = fresh * prices["input"] + output * prices["output"] + cached * prices["cache_read"]
    return math.ceil(micro / 1_000_000)


def sent(standin, path):
    return [r for r in standin.requests if r.path == path]


# --- OpenAI ---------------------------------------------------------------------------------


def test_chat_completion_on_the_workspace_key_charges_nothing(app, tokens, openai_standin):
    raw = oai(app, tokens["pv-byok"]).chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Hello there"}]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content
    assert raw.headers["x-credential-source"] == "byok"
    assert raw.headers["x-credits-charged"] == "0"
    assert [r.api_key for r in sent(openai_standin, "/v1/chat/completions")] == [OPENAI_BYOK]
    row = last_row(app, "pv-byok", "openai")
    assert row["source"] == "byok" and row["charged"] == 0 and row["outcome"] == "ok"
    assert row["input"] == completion.usage.prompt_tokens
    assert row["output"] == completion.usage.completion_tokens


def test_chat_completion_on_credits_is_charged_the_providers_count(app, tokens, openai_standin):
    before = balance(app, "pv-credits")
    raw = oai(app, tokens["pv-credits"]).chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Hello on credits"}]
    )
    usage = raw.parse().usage

    expected = cost(GPT_5_MINI, fresh=usage.prompt_tokens, output=usage.completion_tokens)
    assert raw.headers["x-credential-source"] == "platform"
    assert int(raw.headers["x-credits-charged"]) == expected > 0
    assert [r.api_key for r in sent(openai_standin, "/v1/chat/completions")] == [OPENAI_PLATFORM]
    row = last_row(app, "pv-credits", "openai")
    assert (row["input"], row["output"], row["charged"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        expected,
    )
    assert balance(app, "pv-credits") == before - expected


def test_stream_without_include_usage_is_charged_and_recorded(app, tokens, openai_standin):
    before = row_count(app, "pv-credits", "openai")
    stream = oai(app, tokens["pv-credits"]).chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Stream to me"}], stream=True
    )
    chunks = list(stream)

    # The client did not ask for usage: it sees none, as from OpenAI itself.
    assert chunks and all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)
    [upstream] = sent(openai_standin, "/v1/chat/completions")
    body = upstream.body if isinstance(upstream.body, dict) else json.loads(upstream.body)
    assert body["stream_options"] == {"include_usage": True}
    row = streamed_row(app, "pv-credits", "openai", before)
    assert row["stream"] and row["outcome"] == "ok" and row["source"] == "platform"
    assert row["input"] > 0 and row["output"] > 0
    assert row["charged"] == cost(GPT_5_MINI, fresh=row["input"], output=row["output"]) > 0


def test_stream_with_include_usage_on_the_workspace_key(app, tokens):
    before = row_count(app, "pv-byok", "openai")
    stream = oai(app, tokens["pv-byok"]).chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": "Stream with usage"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]

    assert len(usage) == 1
    row = streamed_row(app, "pv-byok", "openai", before)
    assert (row["input"], row["output"], row["charged"]) == (
        usage[0].prompt_tokens,
        usage[0].completion_tokens,
        0,
    )


@pytest.mark.parametrize("slug", ["pv-byok", "pv-credits"])
def test_responses_plain_and_streamed(app, tokens, slug):
    client = oai(app, tokens[slug])

    response = client.responses.create(model="gpt-5-mini", input="Say hello")
    plain = last_row(app, slug, "openai")
    with client.responses.stream(model="gpt-5-mini", input="Say hello") as stream:
        final = stream.get_final_response()
    streamed = last_row(app, slug, "openai")

    assert response.output_text and final.output_text == response.output_text
    for row, usage in ((plain, response.usage), (streamed, final.usage)):
        assert (row["input"], row["output"]) == (usage.input_tokens, usage.output_tokens)
        expected = cost(GPT_5_MINI, fresh=usage.input_tokens, output=usage.output_tokens)
        assert row["charged"] == (expected if slug == "pv-credits" else 0)
    assert streamed["stream"] and not plain["stream"]


@pytest.mark.parametrize("slug", ["pv-byok", "pv-credits"])
def test_embeddings(app, tokens, slug):
    raw = oai(app, tokens[slug]).embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["first text", "second text"]
    )
    result = raw.parse()

    assert len(result.data) == 2 and len(result.data[0].embedding) == 1536
    row = last_row(app, slug, "openai")
    assert row["input"] == result.usage.prompt_tokens and row["output"] == 0
    expected = math.ceil(result.usage.prompt_tokens * 200 / 1_000_000)
    assert int(raw.headers["x-credits-charged"]) == row["charged"]
    assert row["charged"] == (expected if slug == "pv-credits" else 0)


def test_invalid_openai_key_refuses_openai_only(app, tokens, openai_standin, standin):
    with pytest.raises(openai.ConflictError) as refused:
        oai(app, tokens["pv-mixed"]).chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": "Hi"}]
        )

    assert refused.value.status_code == 409
    assert refused.value.code == "llm_key_invalid"
    assert "OpenAI key is invalid" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert set(refused.value.body) == {"message", "type", "param", "code"}
    assert openai_standin.requests == []
    message = anthropic.Anthropic(
        base_url=f"{app.url}/anthropic", api_key=tokens["pv-mixed"], max_retries=0
    ).messages.create(
        model="claude-sonnet-5", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].text
    assert [r.api_key for r in sent(standin, "/v1/messages")] == [ANTHROPIC_BYOK]


def test_openai_refusals_are_in_openais_shape(app, tokens):
    with pytest.raises(openai.AuthenticationError) as bad_token:
        oai(app, "not-a-token").models.list()
    unknown = httpx2.get(
        f"{app.url}/openai/v1/assistants", headers={"authorization": f"Bearer {tokens['pv-byok']}"}
    )
    models = oai(app, tokens["pv-byok"]).models.list()

    assert bad_token.value.status_code == 401
    assert unknown.status_code == 404
    assert set(unknown.json()["error"]) == {"message", "type", "param", "code"}
    assert "gpt-5-mini" in {model.id for model in models}


def test_credits_refuse_an_unpriced_model_before_openai(app, tokens, openai_standin):
    with pytest.raises(openai.BadRequestError) as refused:
        oai(app, tokens["pv-credits"]).chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "Hi"}]
        )

    assert "not available with AI credits" in refused.value.message
    assert openai_standin.requests == []


# --- Gemini ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["pv-byok", "pv-credits"])
def test_gemini_generate_and_stream(app, tokens, gemini_standin, slug):
    client = gem(app, tokens[slug])

    answer = client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    plain = last_row(app, slug, "gemini")
    chunks = list(
        client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello")
    )
    streamed = last_row(app, slug, "gemini")

    assert answer.text and "".join(chunk.text or "" for chunk in chunks) == answer.text
    final_usage = chunks[-1].usage_metadata
    for row, usage in ((plain, answer.usage_metadata), (streamed, final_usage)):
        output = usage.candidates_token_count + (usage.thoughts_token_count or 0)
        assert (row["input"], row["output"]) == (usage.prompt_token_count, output)
        expected = cost(GEMINI_FLASH, fresh=usage.prompt_token_count, output=output)
        assert row["charged"] == (expected if slug == "pv-credits" else 0)
        assert row["source"] == ("platform" if slug == "pv-credits" else "byok")
    key = GEMINI_PLATFORM if slug == "pv-credits" else GEMINI_BYOK
    assert {r.api_key for r in gemini_standin.requests} == {key}


@pytest.mark.parametrize("slug", ["pv-byok", "pv-credits"])
def test_gemini_count_tokens_is_free_and_embeddings_are_metered(app, tokens, slug):
    client = gem(app, tokens[slug])
    rows_before = app.database.rows("SELECT count(*) FROM ai_gateway_airequest")[0][0]

    counted = client.models.count_tokens(model="gemini-2.5-flash", contents="Count me")
    rows_after_count = app.database.rows("SELECT count(*) FROM ai_gateway_airequest")[0][0]
    one = client.models.embed_content(model="gemini-embedding-001", contents="embed me")
    single = last_row(app, slug, "gemini")
    batch = client.models.embed_content(
        model="gemini-embedding-001", contents=["first text", "second text"]
    )
    both = last_row(app, slug, "gemini")

    assert counted.total_tokens > 0 and rows_after_count == rows_before
    assert len(one.embeddings) == 1 and len(batch.embeddings) == 2
    # Google reports no usage for embeddings: a bound of one token per three bytes of text.
    assert single["input"] == 3 and both["input"] == 7
    if slug == "pv-credits":
        assert single["charged"] == 1 and both["charged"] == 1
        assert single["source"] == both["source"] == "platform"
    else:
        assert single["charged"] == both["charged"] == 0


def test_gemini_refusals_are_in_googles_shape(app, tokens):
    refused_client = gem(app, "not-a-token")  # kept: a collected client closes its connections
    with pytest.raises(genai_errors.ClientError) as bad_token:
        refused_client.models.generate_content(model="gemini-2.5-flash", contents="x")
    unknown = httpx2.get(
        f"{app.url}/gemini/v1beta/tunedModels", headers={"x-goog-api-key": tokens["pv-byok"]}
    )
    listed = httpx2.get(
        f"{app.url}/gemini/v1/models", headers={"x-goog-api-key": tokens["pv-byok"]}
    )

    assert bad_token.value.code == 400
    assert bad_token.value.status == "INVALID_ARGUMENT"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["status"] == "NOT_FOUND"
    assert listed.status_code == 200
    assert "models/gemini-2.5-flash" in {m["name"] for m in listed.json()["models"]}
    assert listed.headers["x-credential-source"] == "byok"


def key_status(app, slug, provider):
    [(status,)] = app.database.rows(
        "SELECT k.status FROM llm_keys_llmkey k JOIN workspaces_workspace w"
        f" ON w.id = k.workspace_id WHERE w.slug = '{slug}' AND k.provider = '{provider}'"
    )
    return status


def test_a_key_the_provider_refuses_is_marked_invalid_and_not_tried_again(
    app, tokens, openai_standin, gemini_standin
):
    client = oai(app, tokens["pv-gone"])
    for _ in range(2):
        with pytest.raises(openai.ConflictError) as refused:
            client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "Hi"}]
            )
        assert refused.value.code == "llm_key_invalid"
    gemini = gem(app, tokens["pv-gone"])
    for _ in range(2):
        with pytest.raises(genai_errors.ClientError) as google_refused:
            gemini.models.generate_content(model="gemini-2.5-flash", contents="Hi")
        assert google_refused.value.code == 409
        assert google_refused.value.status == "FAILED_PRECONDITION"

    # One provider call each, the first; the second request is refused without one.
    assert len(sent(openai_standin, "/v1/chat/completions")) == 1
    assert len(gemini_standin.requests) == 1
    assert key_status(app, "pv-gone", "openai") == "invalid"
    assert key_status(app, "pv-gone", "gemini") == "invalid"
    assert "Google Gemini key is invalid" in google_refused.value.message


# --- Streams the gateway ends early ---------------------------------------------------------


def small_credits_token(app, slug, credits):
    app.workspace(slug, admin=f"admin@{slug}.test")
    app.manage("grant_credits", slug, str(credits), "--reason", "served test")
    return app.api_token(slug, "ci job")


def data_events(response):
    """The ``data:`` payloads of a server-sent event stream, whatever its line endings."""
    text = response.read().decode().replace("\r\n", "\n")
    events = [event for event in text.split("\n\n") if event.strip()]
    return [event for event in events if not event.startswith(":")]


def test_openai_stream_out_of_credits_ends_with_openais_error(app, openai_standin):
    openai_standin.state.answer_words = 8_000  # far more than 100 credits buy
    token = small_credits_token(app, "pv-runs-out-openai", 100)
    body = {
        "model": "gpt-5-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "Write a very long essay"}],
    }
    with httpx2.stream(
        "POST",
        f"{app.url}/openai/v1/chat/completions",
        headers={"authorization": f"Bearer {token}"},
        json=body,
        timeout=60,
    ) as response:
        events = data_events(response)

    assert response.status_code == 200
    assert not any(event.startswith("event:") for event in events)
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["code"] == "insufficient_credits"
    assert last["error"]["type"] == "invalid_request_error"
    assert "ran out" in last["error"]["message"] and "OpenAI key" in last["error"]["message"]
    assert "data: [DONE]" not in events
    row = last_row(app, "pv-runs-out-openai", "openai")
    assert row["outcome"] == "credits_exhausted" and row["charged"] == 100
    assert balance(app, "pv-runs-out-openai") == 0

    # The SDK raises its own error, with the gateway's message.
    token = small_credits_token(app, "pv-runs-out-openai-sdk", 100)
    stream = oai(app, token).chat.completions.create(**body)
    with pytest.raises(openai.APIError, match="ran out") as raised:
        list(stream)
    assert raised.value.code == "insufficient_credits"


def test_gemini_stream_out_of_credits_ends_with_googles_error(app, gemini_standin):
    gemini_standin.state.answer_words = 8_000  # far more than 120 credits buy
    # Chunk by chunk, as a model writes: had the whole answer arrived in one read, the
    # provider would have produced it all before the gateway could stop it.
    gemini_standin.state.stream_word_delay = 0.002
    token = small_credits_token(app, "pv-runs-out-gemini", 120)
    with httpx2.stream(
        "POST",
        f"{app.url}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        headers={"x-goog-api-key": token},
        json={"contents": [{"parts": [{"text": "Write a very long essay"}]}]},
        timeout=60,
    ) as response:
        raw = response.read()
        events = data_events(response)

    assert response.status_code == 200
    assert raw.endswith(b"\r\n\r\n")
    last = json.loads(events[-1].removeprefix("data: "))
    assert (last["error"]["code"], last["error"]["status"]) == (402, "RESOURCE_EXHAUSTED")
    assert last["error"]["details"][0]["reason"] == "INSUFFICIENT_CREDITS"
    assert "ran out" in last["error"]["message"]
    assert "Google Gemini key" in last["error"]["message"]
    row = last_row(app, "pv-runs-out-gemini", "gemini")
    assert row["outcome"] == "credits_exhausted" and row["charged"] == 120
    assert balance(app, "pv-runs-out-gemini") == 0

    token = small_credits_token(app, "pv-runs-out-gemini-sdk", 120)
    client = gem(app, token)  # kept: a collected client closes its connections
    stream = client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="Write a very long essay"
    )
    with pytest.raises(genai_errors.APIError, match="ran out") as raised:
        list(stream)
    assert raised.value.code == 402
