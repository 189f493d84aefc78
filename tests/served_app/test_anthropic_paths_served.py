"""Every path under ``/anthropic`` answers in Anthropic's envelope (SPEC §17), through
``make serve`` with the official SDK: unknown paths, ``models.retrieve``, and Message
Batches and Files, which pass through on the workspace's own key only.
"""

import anthropic
import httpx2
import pytest

from tests.served import PASSWORD

pytestmark = pytest.mark.served

MODEL = "claude-sonnet-5"
BYOK_KEY = "sk-ant-api03-served0paths0byok0key00000000000000000000000PATH"
SECRET_PROMPT = "a-prompt-no-audit-may-hold-7731"
HI_SECRET = [{"role": "user", "content": SECRET_PROMPT}]


@pytest.fixture(scope="module")
def tokens(served):
    app = served
    for slug in ("path-byok", "path-credits"):
        app.workspace(slug, admin=f"admin@{slug}.test")
    app.manage("set_llm_key", "path-byok", "--no-check", stdin=BYOK_KEY + "\n")
    app.manage("grant_credits", "path-credits", "5000000", "--reason", "served test")
    return {slug: app.api_token(slug, "ci") for slug in ("path-byok", "path-credits")}


def sdk(app, token):
    return anthropic.Anthropic(base_url=f"{app.url}/anthropic", api_key=token, max_retries=0)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/anthropic/v1/nothing-here"),
        ("POST", "/anthropic/v1/complete"),
        ("GET", "/anthropic/"),
        ("GET", "/anthropic"),
        ("DELETE", "/anthropic/v2/messages"),
    ],
)
def test_an_unknown_path_is_anthropics_404(served, tokens, method, path):
    response = httpx2.request(
        method, f"{served.url}{path}", headers={"x-api-key": tokens["path-byok"]}
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "not_found_error"
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["x-should-retry"] == "false"


def test_the_sdk_raises_its_not_found_error_for_an_unknown_path(served, tokens):
    client = sdk(served, tokens["path-byok"])

    with pytest.raises(anthropic.NotFoundError) as raised:
        client.get("/v1/nothing-here", cast_to=object)

    assert raised.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("slug", ["path-byok", "path-credits"])
def test_models_retrieve(served, tokens, standin, slug):
    client = sdk(served, tokens[slug])

    model = client.models.retrieve(MODEL)
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.models.retrieve("claude-imaginary-9")

    assert (model.id, model.type) == (MODEL, "model")
    assert raised.value.body["error"]["type"] == "not_found_error"
    assert raised.value.request_id.startswith("req_standin_")
    assert [r.path for r in standin.requests] == [
        f"/v1/models/{MODEL}",
        "/v1/models/claude-imaginary-9",
    ]


def test_an_unknown_model_keeps_the_providers_404(served, tokens, standin):
    with pytest.raises(anthropic.NotFoundError) as raised:
        sdk(served, tokens["path-byok"]).messages.create(
            model="gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.body["error"]["type"] == "not_found_error"


def test_batches_and_files_pass_through_on_the_workspace_key(served, tokens, standin):
    client = sdk(served, tokens["path-byok"])

    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "one",
                "params": {
                    "model": MODEL,
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            }
        ]
    )
    batches = client.messages.batches.list(limit=5)
    files = client.beta.files.list(betas=["files-api-2025-04-14"])

    assert batch.processing_status == "in_progress"
    assert batches.data == [] and files.data == []
    assert [(r.method, r.path, r.api_key) for r in standin.requests] == [
        ("POST", "/v1/messages/batches", BYOK_KEY),
        ("GET", "/v1/messages/batches?limit=5", BYOK_KEY),
        ("GET", "/v1/files", BYOK_KEY),
    ]
    assert standin.requests[0].body["requests"][0]["custom_id"] == "one"
    assert standin.requests[2].anthropic_beta == "files-api-2025-04-14"


def test_batches_and_files_are_refused_on_credits(served, tokens, standin):
    client = sdk(served, tokens["path-credits"])

    for call in (client.messages.batches.list, client.beta.files.list):
        with pytest.raises(anthropic.PermissionDeniedError) as raised:
            call()
        assert "workspace's own Anthropic key" in raised.value.body["error"]["message"]
        assert raised.value.response.headers["x-should-retry"] == "false"
    assert standin.requests == []


def test_each_batches_and_files_call_on_the_workspace_key_is_audited(served, tokens, standin):
    """Decision 125: one key event per call sent on the workspace's own key, naming the
    token, the call, the answer's status and request id; support sees them in the admin;
    neither a body nor the key is recorded anywhere."""
    token = tokens["path-byok"]
    client = sdk(served, token)
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "audited",
                "params": {"model": MODEL, "max_tokens": 8, "messages": HI_SECRET},
            }
        ]
    )
    client.messages.batches.list()
    client.beta.files.list(betas=["files-api-2025-04-14"])
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.batches.retrieve("msgbatch_nowhere")

    rows = served.database.rows(
        "SELECT actor_label, detail, hint FROM llm_keys_keyevent"
        " WHERE action = 'passed_through' ORDER BY id"
    )
    prefix = token[: len("byok_") + 8]
    assert [(label, hint) for label, _, hint in rows][-4:] == [
        (f"API token ci ({prefix})", BYOK_KEY[-4:])
    ] * 4
    details = [detail for _, detail, _ in rows][-4:]
    assert [detail.split(" (request-id ")[0] for detail in details] == [
        "POST /v1/messages/batches → 200",
        "GET /v1/messages/batches → 200",
        "GET /v1/files → 200",
        "GET /v1/messages/batches/msgbatch_nowhere → 404",
    ]
    assert details[0].endswith(f"(request-id {batch._request_id})")
    assert details[3].endswith(f"(request-id {missing.value.request_id})")

    served.manage(
        "create_support_user", "support@paths.test", "--password-stdin", stdin=PASSWORD + "\n"
    )
    page = served.login("support@paths.test").get(
        "/admin/llm_keys/keyevent/", params={"action__exact": "passed_through"}
    )
    assert page.status_code == 200
    assert "GET /v1/messages/batches/msgbatch_nowhere → 404" in page.text
    assert f"API token ci ({prefix})" in page.text

    everything = "\n".join(
        str(row) for row in served.database.rows("SELECT * FROM llm_keys_keyevent")
    )
    for secret in (BYOK_KEY, token, SECRET_PROMPT):
        assert secret not in everything
        assert secret not in served.log()
