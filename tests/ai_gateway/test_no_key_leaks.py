"""The sentinel key, as a workspace's key and as the platform key, never leaves the request that
uses it: not into a response, a streamed event, a page, a log record, an e-mail or a row."""

from llm_keys.services import Actor, llm_key_set
from tests.conftest import SENTINEL_KEY
from tests.leaks import assert_secret_absent, capture_all_logs

from .helpers import body, post, post_streamed, streamed


def _texts(responses) -> list[str]:
    texts = []
    for response in responses:
        if response.streaming:
            texts.append(streamed(response).decode())
        else:
            texts.append(response.content.decode())
        texts.append(str(response.headers))
    return texts


def _every_gateway_path(client, standin, key: str) -> list:
    responses = [
        post(client, body()),
        post_streamed(client, body(stream=True)),
        client.post("/w/acme/ai/", {"model": "claude-sonnet-5", "max_tokens": 32, "prompt": "hi"}),
        client.get("/w/acme/ai/"),
        client.get("/w/acme/usage/"),
    ]
    for behavior in ("servererror", "ratelimited", "overloaded", "streamerror"):
        standin.set_behavior(key, behavior)
        responses.append(post(client, body()))
        responses.append(post_streamed(client, body(stream=True)))
        responses.append(
            client.post(
                "/w/acme/ai/", {"model": "claude-sonnet-5", "max_tokens": 32, "prompt": "x"}
            )
        )
    return responses


def test_workspace_key_never_leaks_from_the_gateway(
    admin_client, workspace, admin_user, standin, django_capture_on_commit_callbacks
):
    with capture_all_logs() as records, django_capture_on_commit_callbacks(execute=True):
        llm_key_set(
            workspace=workspace, raw_key=SENTINEL_KEY, actor=Actor(user=admin_user), check=False
        )
        responses = _every_gateway_path(admin_client, standin, SENTINEL_KEY)
        # Finally the key is refused mid-request: it is marked invalid and admins are told.
        standin.set_behavior(SENTINEL_KEY, "revoked")
        responses.append(post(admin_client, body()))
        responses.append(post(admin_client, body()))  # refused at once now
        responses.append(admin_client.get("/w/acme/usage/"))
        responses.append(admin_client.get("/w/acme/settings/llm-key/"))
        texts = _texts(responses)

    assert SENTINEL_KEY in standin.keys_seen()  # the key really was used
    assert [r.status_code for r in responses[-4:-2]] == [409, 409]
    assert_secret_absent(SENTINEL_KEY, records=records, texts=texts)
    # Not even its distinctive middle part, in case something truncates or masks badly.
    assert_secret_absent("SENTINEL0leak0check", records=records, texts=texts)


def test_platform_key_never_leaks_from_the_gateway(
    admin_client, workspace, funded, standin, settings
):
    settings.PLATFORM_ANTHROPIC_API_KEY = SENTINEL_KEY
    with capture_all_logs() as records:
        responses = _every_gateway_path(admin_client, standin, SENTINEL_KEY)
        standin.set_behavior(SENTINEL_KEY, "revoked")
        responses.append(post(admin_client, body()))
        texts = _texts(responses)

    assert SENTINEL_KEY in standin.keys_seen()
    assert responses[-1].status_code == 503
    assert_secret_absent(SENTINEL_KEY, records=records, texts=texts)
    assert_secret_absent("SENTINEL0leak0check", records=records, texts=texts)


def test_key_absent_from_the_python_entry_points_results(workspace, admin_user, standin):
    from asgiref.sync import async_to_sync

    from ai_gateway.services import astream_message, call_begin, create_message

    llm_key_set(
        workspace=workspace, raw_key=SENTINEL_KEY, actor=Actor(user=admin_user), check=False
    )
    result = create_message(
        workspace=workspace,
        user=admin_user,
        model="claude-sonnet-5",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=16,
    )
    request = body(stream=True)
    call = call_begin(workspace=workspace, user=admin_user, body=request)

    async def consume():
        stream = await astream_message(call, body=request, headers={}, trailer=True)
        return stream, [chunk async for chunk in stream]

    stream, chunks = async_to_sync(consume)()
    # A stream keeps its credentials for the request's life; their repr must not show the key.
    text = repr(result) + repr(call) + repr(vars(stream)) + repr(chunks)
    assert SENTINEL_KEY not in text
