"""What a program sees when a call fails (SPEC §17), through ``make serve`` with the official
SDK: provider errors keep their status, type, ``retry-after`` and ``request-id``; refusals
that retrying cannot fix say so (``x-should-retry: false``), so the SDK's default retries
stop at once; the gateway never retries upstream on a client's behalf.
"""

import contextlib
import time

import anthropic
import pytest

from tests.served import PLATFORM_KEY

pytestmark = pytest.mark.served

MODEL = "claude-sonnet-5"
HI = [{"role": "user", "content": "hi"}]
BYOK_KEY = "sk-ant-api03-served0errors0byok0key0000000000000000000000ABCD"
REVOKED_KEY = "sk-ant-api03-served0errors0gone0key000000000000000-revoked"


@pytest.fixture(scope="module")
def tokens(served):
    app = served
    for slug in ("err-byok", "err-credits", "err-broke", "err-invalid"):
        app.workspace(slug, admin=f"admin@{slug}.test")
    app.manage("set_llm_key", "err-byok", "--no-check", stdin=BYOK_KEY + "\n")
    app.manage("grant_credits", "err-credits", "5000000", "--reason", "served test")
    app.manage("set_llm_key", "err-invalid", "--no-check", stdin=REVOKED_KEY + "\n")
    app.manage("check_llm_keys", "err-invalid", expect_ok=False)
    slugs = ("err-byok", "err-credits", "err-broke", "err-invalid")
    return {slug: app.api_token(slug, "ci") for slug in slugs}


class CountingClient:
    """The official SDK with its default retries, counting the HTTP requests it sends."""

    def __init__(self, app, token, **options):
        self.sent = 0
        http_client = anthropic.DefaultHttpxClient(event_hooks={"request": [self._count]})
        self.sdk = anthropic.Anthropic(
            base_url=f"{app.url}/anthropic", api_key=token, http_client=http_client, **options
        )

    def _count(self, request):
        self.sent += 1


def upstream(standin):
    return [r for r in standin.requests if r.path.startswith("/v1/")]


@pytest.mark.parametrize("slug", ["err-byok", "err-credits"])
@pytest.mark.parametrize(
    ("behavior", "status", "error_type", "exception"),
    [
        ("overloaded", 529, "overloaded_error", anthropic.OverloadedError),
        ("servererror", 500, "api_error", anthropic.InternalServerError),
        ("ratelimited", 429, "rate_limit_error", anthropic.RateLimitError),
    ],
)
def test_a_provider_error_keeps_its_status_type_and_request_id(
    served, tokens, standin, slug, behavior, status, error_type, exception
):
    standin.set_behavior(BYOK_KEY if slug == "err-byok" else PLATFORM_KEY, behavior)
    client = CountingClient(served, tokens[slug], max_retries=0)

    with pytest.raises(exception) as raised:
        client.sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)

    error = raised.value
    assert error.status_code == status
    assert error.body["error"]["type"] == error_type
    assert error.request_id.startswith("req_standin_")
    assert len(upstream(standin)) == 1, "the gateway retried upstream"
    if status == 429:
        assert error.response.headers["retry-after"] == "1"
    stored = served.database.rows(
        "SELECT r.provider_request_id FROM ai_gateway_airequest r JOIN workspaces_workspace w"
        f" ON w.id = r.workspace_id WHERE w.slug = '{slug}' ORDER BY r.id DESC LIMIT 1"
    )
    assert stored == [(error.request_id,)]


def test_a_provider_error_on_the_count_tokens_path_keeps_its_status(served, tokens, standin):
    standin.set_behavior(BYOK_KEY, "overloaded")
    client = CountingClient(served, tokens["err-byok"], max_retries=0)

    with pytest.raises(anthropic.OverloadedError):
        client.sdk.messages.count_tokens(model=MODEL, messages=HI)
    assert len(upstream(standin)) == 1


@pytest.mark.parametrize(
    ("slug", "exception", "status", "row"),
    [
        ("bad-token", anthropic.AuthenticationError, 401, False),
        ("err-broke", anthropic.PaymentRequiredError, 402, True),
        ("err-invalid", anthropic.ConflictError, 409, True),
    ],
)
def test_a_refusal_retrying_cannot_fix_is_raised_after_one_request(
    served, tokens, standin, slug, exception, status, row
):
    token = tokens.get(slug, "byok_not_a_real_token_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    client = CountingClient(served, token)  # the SDK's default: two retries

    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.sdk.messages.create(model=MODEL, max_tokens=16, messages=HI)
    elapsed = time.monotonic() - started

    error = raised.value
    assert error.status_code == status
    assert isinstance(error, exception)
    assert client.sent == 1
    assert elapsed < 2
    assert error.response.headers["x-should-retry"] == "false"
    request_id = error.response.headers["request-id"]
    assert request_id.startswith("req_")
    assert request_id in error.body["error"]["message"]
    assert upstream(standin) == []
    if row:
        stored = served.database.rows(
            "SELECT r.provider_request_id FROM ai_gateway_airequest r JOIN workspaces_workspace w"
            f" ON w.id = r.workspace_id WHERE w.slug = '{slug}' ORDER BY r.id DESC LIMIT 1"
        )
        assert stored == [(request_id,)]


def test_every_answer_carries_a_request_id(served, tokens, standin):
    client = CountingClient(served, tokens["err-credits"], max_retries=0)

    ok = client.sdk.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=HI)
    with client.sdk.messages.with_streaming_response.create(
        model=MODEL, max_tokens=16, messages=HI, stream=True
    ) as streamed:
        streamed.read()
    models = client.sdk.models.with_raw_response.list()
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.sdk.messages.create(model=MODEL, max_tokens=0, messages=HI)

    assert ok.headers["request-id"].startswith("req_standin_")
    assert streamed.headers["request-id"].startswith("req_standin_")
    assert models.headers["request-id"].startswith("req_standin_")
    assert bad.value.response.headers["request-id"].startswith("req_")


# The headers a request to Anthropic may carry: the HTTP library's, the SDK's own
# (x-stainless-*), the key (this SDK sends it as a bearer token), and the client's
# allow-listed anthropic-version/-beta.
ALLOWED_UPSTREAM = {
    "authorization",
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "content-length",
    "content-type",
    "user-agent",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
}


@pytest.mark.parametrize("slug", ["err-credits", "err-byok"])
def test_no_body_field_becomes_an_upstream_header(served, tokens, standin, slug):
    client = CountingClient(served, tokens[slug], max_retries=0)
    fields = {
        "workspace_id": "wrkspc_platform_secret",
        "user_profile_id": "profile_someone_else",
        "betas": ["some-beta"],
        "extra_headers": {"anthropic-workspace-id": "x"},
    }

    # On BYOK the provider may refuse fields it does not know; that is its call. On credits
    # the gateway refuses fields its price table cannot price before any provider call
    # (decision 114), so only count_tokens goes out there.
    with contextlib.suppress(anthropic.BadRequestError):
        client.sdk.messages.create(model=MODEL, max_tokens=16, messages=HI, extra_body=fields)
    client.sdk.messages.count_tokens(model=MODEL, messages=HI, extra_body=fields)

    sent = upstream(standin)
    assert len(sent) == (1 if slug == "err-credits" else 2)
    for request in sent:
        extra = {
            name
            for name in request.headers
            if name not in ALLOWED_UPSTREAM and not name.startswith("x-stainless-")
        }
        assert extra == set(), request.path
        assert request.body["workspace_id"] == "wrkspc_platform_secret"


def test_a_mistyped_field_is_the_clients_400(served, tokens, standin):
    client = CountingClient(served, tokens["err-credits"], max_retries=0)

    for fields in ({"tools": 5}, {"tool_choice": "auto"}, {"messages": "hi"}):
        try:
            client.sdk.messages.create(model=MODEL, max_tokens=16, messages=HI, extra_body=fields)
        except anthropic.BadRequestError as error:
            assert error.body["error"]["type"] == "invalid_request_error"
        else:
            raise AssertionError(f"{fields} was accepted")
    assert "Traceback" not in served.log()


def test_a_plain_call_whose_client_gives_up_is_recorded_client_disconnected(
    served, tokens, standin
):
    standin.state.latency = 3
    client = CountingClient(served, tokens["err-credits"], max_retries=0, timeout=1)

    with pytest.raises(anthropic.APITimeoutError):
        client.sdk.messages.create(model=MODEL, max_tokens=16, messages=[HI[0]])
    time.sleep(4)

    rows = served.database.rows(
        "SELECT r.outcome FROM ai_gateway_airequest r JOIN workspaces_workspace w"
        " ON w.id = r.workspace_id WHERE w.slug = 'err-credits' ORDER BY r.id DESC LIMIT 2"
    )
    assert rows[0] == ("client_disconnected",)
    assert len(upstream(standin)) == 1
    assert served.database.rows(
        "SELECT count(*) FROM ai_gateway_airequest r JOIN workspaces_workspace w"
        " ON w.id = r.workspace_id WHERE w.slug = 'err-credits'"
        " AND r.outcome = 'client_disconnected'"
    ) == [(1,)]
