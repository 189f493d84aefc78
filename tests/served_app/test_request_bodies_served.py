"""Request bodies no tenant can knock a worker over with (SPEC §17), through ``make serve``:
the size limit before a byte is read, credentials before a large body, JSON parsed off the
event loop with structural limits.
"""

import json
import socket
import threading
import time
from urllib.parse import urlsplit

import anthropic
import httpx2
import pytest

pytestmark = pytest.mark.served

MODEL = "claude-sonnet-5"
LIMIT = 32 * 1024 * 1024  # AI_REQUEST_MAX_BODY_BYTES' default, which make serve runs with


@pytest.fixture(scope="module")
def tokens(served):
    app = served
    for slug in ("body-one", "body-two"):
        app.workspace(slug, admin=f"admin@{slug}.test")
        app.manage("grant_credits", slug, "5000000", "--reason", "served test")
    made = {slug: app.api_token(slug, "ci") for slug in ("body-one", "body-two")}
    made["revoked"] = app.api_token("body-one", "gone")
    app.manage("revoke_api_token", "body-one", "gone")
    return made


def send_head(app, head: str, body: bytes = b"") -> tuple[str, float]:
    """Send a request's head (and ``body``) on a raw socket, without the rest of the
    declared body; return the answer's head and the seconds it took to come."""
    url = urlsplit(app.url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.decode(errors="replace"), time.monotonic() - started


def head(path: str, length: int, *headers: str, method: str = "POST") -> str:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *headers,
    ]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("path", ["/anthropic/v1/messages", "/anthropic/v1/messages/count_tokens"])
def test_200_mb_declared_without_a_token_is_answered_at_once(served, tokens, path):
    answer, seconds = send_head(served, head(path, 200 * 1024 * 1024), b"{" * 65536)

    assert seconds < 3
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "x-should-retry: false" in answer.lower()
    assert "request-id: req_gw_" in answer.lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/anthropic/v1/models"), ("GET", "/login/"), ("OPTIONS", "/anthropic/v1/messages")],
)
def test_a_body_on_a_get_is_held_to_the_limit_too(served, tokens, method, path):
    """A GET has no body as a rule; one declaring 200 MB is refused unread like a POST's."""
    answer, seconds = send_head(served, head(path, 200 * 1024 * 1024, method=method), b"{" * 65536)

    assert seconds < 3
    assert answer.startswith("HTTP/1.1 413"), answer


@pytest.mark.parametrize(
    ("path", "header", "status", "shape"),
    [
        ("/anthropic/v1/messages", "x-api-key: {}", 401, "anthropic"),
        ("/anthropic/v1/messages", "authorization: Bearer {}", 401, "anthropic"),
        ("/openai/v1/chat/completions", "authorization: Bearer {}", 401, "openai"),
        # Google's own answer to a bad key: 400 API_KEY_INVALID (decision 149).
        (
            "/gemini/v1beta/models/gemini-3-flash:generateContent",
            "x-goog-api-key: {}",
            400,
            "google",
        ),
    ],
)
@pytest.mark.parametrize("which", ["revoked", "wrong"])
def test_a_revoked_or_wrong_token_is_refused_before_200_mb_are_read(
    served, tokens, standin, path, header, status, shape, which
):
    token = tokens["revoked"] if which == "revoked" else "byok_" + "x" * 43
    answer, seconds = send_head(
        served, head(path, 200 * 1024 * 1024, header.format(token)), b"{" * 65536
    )

    assert seconds < 3
    assert answer.startswith(f"HTTP/1.1 {status}"), answer
    assert "x-should-retry: false" in answer.lower()
    assert "request-id: req_gw_" in answer.lower()
    assert "connection: close" in answer.lower()
    assert standin.requests == []


def test_a_revoked_token_is_refused_in_its_providers_shape(served, tokens):
    bodies = {}
    for name, path, headers in (
        ("anthropic", "/anthropic/v1/messages", {"x-api-key": tokens["revoked"]}),
        ("openai", "/openai/v1/chat/completions", {"authorization": f"Bearer {tokens['revoked']}"}),
        (
            "google",
            "/gemini/v1beta/models/m:generateContent",
            {"x-goog-api-key": tokens["revoked"]},
        ),
    ):
        response = httpx2.post(f"{served.url}{path}", content=b"{}", headers=headers, timeout=10)
        bodies[name] = response.json()["error"]

    assert bodies["anthropic"]["type"] == "authentication_error"
    assert "request id req_gw_" in bodies["anthropic"]["message"]
    assert bodies["openai"]["code"] == "invalid_api_key"
    assert bodies["google"]["status"] == "INVALID_ARGUMENT"


def test_an_oversized_body_is_refused_with_a_token_too(served, tokens):
    answer, seconds = send_head(
        served, head("/anthropic/v1/messages", LIMIT + 1, f"x-api-key: {tokens['body-one']}")
    )

    assert seconds < 3
    assert answer.startswith("HTTP/1.1 413"), answer


@pytest.mark.parametrize("path", ["/anthropic/v1/messages", "/api/v1/w/body-one/messages"])
def test_no_credentials_is_refused_before_the_body_is_read(served, tokens, path):
    # One megabyte declared, none of it sent: the answer cannot wait for the body.
    answer, seconds = send_head(served, head(path, 1024 * 1024))

    assert seconds < 3
    assert answer.startswith("HTTP/1.1 401"), answer
    assert "x-should-retry: false" in answer.lower()


def test_a_chunked_body_is_cut_at_the_limit(served, tokens):
    def chunks():
        piece = b" " * (1024 * 1024)
        for _ in range(LIMIT // len(piece) + 2):
            yield piece

    response = httpx2.post(
        f"{served.url}/anthropic/v1/messages",
        content=chunks(),
        headers={"x-api-key": tokens["body-one"], "content-type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def nested_body(kind: str) -> bytes:
    start = b'{"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "hi"}], "x": '
    size = 30 * 1024 * 1024
    if kind == "deep":
        depth = size // 2
        return start + b"[" * depth + b"]" * depth + b"}"
    return start + b"[" + b"[]," * (size // 3) + b"[]]}"


def test_nested_bodies_are_400_and_another_workspaces_stream_completes(served, tokens, standin):
    standin.state.stream_word_delay = 0.3  # a stream of ~2 s
    results: dict[str, object] = {}

    def count(kind: str) -> None:
        started = time.monotonic()
        response = httpx2.post(
            f"{served.url}/anthropic/v1/messages/count_tokens",
            content=nested_body(kind),
            headers={"x-api-key": tokens["body-one"], "content-type": "application/json"},
            timeout=60,
        )
        results[kind] = (response.status_code, response.json(), time.monotonic() - started)

    def stream() -> None:
        client = anthropic.Anthropic(
            base_url=f"{served.url}/anthropic", api_key=tokens["body-two"], max_retries=0
        )
        with client.messages.stream(
            model=MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "one two three four five six seven"}],
        ) as answer:
            results["stream"] = answer.get_final_message()

    threads = [
        threading.Thread(target=stream),
        threading.Thread(target=count, args=("deep",)),
        threading.Thread(target=count, args=("wide",)),
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=90)

    for kind in ("deep", "wide"):
        status, body, seconds = results[kind]
        assert status == 400, body
        assert body["error"]["type"] == "invalid_request_error"
        assert seconds < 10
    assert results["stream"].stop_reason == "end_turn"
    assert [r.path for r in standin.requests] == ["/v1/messages"]
    [(outcome, charged)] = served.database.rows(
        "SELECT r.outcome, r.credits_charged FROM ai_gateway_airequest r"
        " JOIN workspaces_workspace w ON w.id = r.workspace_id WHERE w.slug = 'body-two'"
    )
    assert outcome == "ok" and charged > 0


def test_a_body_within_the_limits_still_passes(served, tokens, standin):
    body = {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "a, b, c [x] {y} " * 100_000}],
    }

    response = httpx2.post(
        f"{served.url}/anthropic/v1/messages/count_tokens",
        content=json.dumps(body),
        headers={"x-api-key": tokens["body-one"], "content-type": "application/json"},
        timeout=30,
    )

    assert response.status_code == 200, response.text


# --- /openai and /gemini answer these refusals in their provider's own error shape ----------

OPENAI_CHAT = "/openai/v1/chat/completions"
GEMINI_GENERATE = "/gemini/v1beta/models/gemini-2.5-flash:generateContent"


def send_and_read(app, head: str) -> tuple[str, dict, float]:
    """Send a request's head only; read the whole answer (the guard closes the connection)."""
    url = urlsplit(app.url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head_part, _, body = answer.partition(b"\r\n\r\n")
    return head_part.decode(), json.loads(body), time.monotonic() - started


def test_an_oversized_openai_body_is_refused_in_openais_shape(served, tokens):
    answer, body, seconds = send_and_read(
        served, head(OPENAI_CHAT, LIMIT + 1, f"Authorization: Bearer {tokens['body-one']}")
    )

    assert seconds < 3
    assert answer.startswith("HTTP/1.1 413"), answer
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "request_too_large"
    assert body["error"]["type"] == "invalid_request_error"
    assert "too large" in body["error"]["message"]


def test_an_oversized_gemini_body_is_refused_in_googles_shape(served, tokens):
    answer, body, seconds = send_and_read(
        served, head(GEMINI_GENERATE, LIMIT + 1, f"x-goog-api-key: {tokens['body-one']}")
    )

    assert seconds < 3
    assert answer.startswith("HTTP/1.1 413"), answer
    assert (body["error"]["code"], body["error"]["status"]) == (413, "INVALID_ARGUMENT")
    assert body["error"]["details"][0]["reason"] == "REQUEST_TOO_LARGE"


@pytest.mark.parametrize(
    ("path", "status", "check"),
    [
        (OPENAI_CHAT, 401, lambda e: e["code"] == "missing_api_key"),
        (GEMINI_GENERATE, 403, lambda e: e["status"] == "PERMISSION_DENIED"),
    ],
)
def test_no_token_is_refused_before_the_body_in_the_providers_shape(
    served, tokens, path, status, check
):
    answer, body, seconds = send_and_read(served, head(path, 1024 * 1024))

    assert seconds < 3
    assert answer.startswith(f"HTTP/1.1 {status}"), answer
    assert check(body["error"]) and "API token" in body["error"]["message"]


def test_a_body_that_is_not_json_is_refused_in_each_providers_shape(served, tokens):
    token = tokens["body-one"]
    openai_answer = httpx2.post(
        f"{served.url}{OPENAI_CHAT}",
        content=b'{"model": "gpt-5-mini", "messages": [',
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    gemini_answer = httpx2.post(
        f"{served.url}{GEMINI_GENERATE}",
        content=b'{"contents": [',
        headers={"x-goog-api-key": token, "content-type": "application/json"},
    )
    deep = httpx2.post(
        f"{served.url}{OPENAI_CHAT}",
        content=b'{"model": "gpt-5-mini", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )

    assert openai_answer.status_code == 400
    error = openai_answer.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_request_error")
    assert "OpenAI" in error["message"] and "Anthropic" not in error["message"]
    assert gemini_answer.status_code == 400
    error = gemini_answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert "Gemini" in error["message"] and "Anthropic" not in error["message"]
    assert deep.status_code == 400 and deep.json()["error"]["param"] is None
