"""GET /w/<slug>/usage/export.csv (contract, §14): one row per AI request in the period."""

import csv
import datetime
import io

import pytest

from ai_gateway import usage_views
from tests.conftest import SENTINEL_KEY
from tests.factories import AIRequestFactory, MembershipFactory

EXPORT = "/w/acme/usage/export.csv"
NOVEMBER = "?from=2026-11-01&to=2026-11-30"
CONTRACT_COLUMNS = [
    "created_at",
    "user",
    "model",
    "credential_source",
    "outcome",
    "input_tokens",
    "output_tokens",
    "credits_charged",
]


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.UTC)


def rows_of(response) -> list[dict[str, str]]:
    assert response.streaming, "the export must stream"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def usage(workspace, admin_user, member_user):
    AIRequestFactory(
        workspace=workspace,
        user=member_user,
        model="claude-sonnet-5",
        input_tokens=1200,
        output_tokens=300,
        credits_charged=81,
        at=at(2026, 11, 1, 0, 0, 0),
    )
    AIRequestFactory(
        workspace=workspace,
        user=admin_user,
        model="claude-haiku-4-5",
        credential_source="byok",
        at=at(2026, 11, 30, 23, 59, 59, 250000),
    )
    AIRequestFactory(
        workspace=workspace,
        user=member_user,
        outcome="insufficient_credits",
        credential_source="platform",
        input_tokens=0,
        output_tokens=0,
        error_type="insufficient_credits",
        at=at(2026, 11, 15, 12),
    )
    AIRequestFactory(workspace=workspace, user=member_user, at=at(2026, 12, 1))  # outside


def test_outsiders_get_404_and_anonymous_visitors_the_login_page(
    outsider_client, client, workspace
):
    assert outsider_client.get(EXPORT + NOVEMBER).status_code == 404
    response = client.get(EXPORT + NOVEMBER)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_admins_export_every_members_requests_oldest_first(admin_client, usage):
    response = admin_client.get(EXPORT + NOVEMBER)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="ai-usage-acme-2026-11-01-to-2026-11-30.csv"'
    )
    rows = rows_of(response)
    assert list(rows[0])[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    assert [(r["created_at"], r["user"]) for r in rows] == [
        ("2026-11-01T00:00:00Z", "member@example.com"),
        ("2026-11-15T12:00:00Z", "member@example.com"),
        ("2026-11-30T23:59:59.250000Z", "admin@example.com"),
    ]
    first = rows[0]
    assert first["model"] == "claude-sonnet-5"
    assert first["credential_source"] == "platform"
    assert first["outcome"] == "ok"
    assert (first["input_tokens"], first["output_tokens"], first["credits_charged"]) == (
        "1200",
        "300",
        "81",
    )
    assert rows[1]["outcome"] == "insufficient_credits"
    assert rows[2]["credential_source"] == "byok" and rows[2]["credits_charged"] == "0"


def test_members_export_only_their_own_requests(member_client, usage):
    rows = rows_of(member_client.get(EXPORT + NOVEMBER))

    assert len(rows) == 2
    assert {r["user"] for r in rows} == {"member@example.com"}


def test_header_alone_for_an_empty_period(admin_client, usage):
    response = admin_client.get(EXPORT + "?from=2020-01-01&to=2020-01-31")

    text = b"".join(response.streaming_content).decode()
    assert text.splitlines() == [",".join(usage_views.EXPORT_COLUMNS)]


def test_default_period_is_this_month(admin_client, usage, monkeypatch):
    monkeypatch.setattr(usage_views, "today_utc", lambda: datetime.date(2026, 12, 2))

    rows = rows_of(admin_client.get(EXPORT))

    assert [r["created_at"] for r in rows] == ["2026-12-01T00:00:00Z"]


def test_a_bad_period_is_a_plain_400_with_what_to_send(admin_client, workspace):
    response = admin_client.get(EXPORT + "?from=2026-11-30&to=2026-11-01")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "The period starts after it ends" in response.content.decode()


def test_cells_that_a_spreadsheet_would_run_are_kept_as_text(admin_client, workspace):
    formula_user = MembershipFactory(workspace=workspace, user__email="=1+2@example.com").user
    AIRequestFactory(
        workspace=workspace,
        user=formula_user,
        model='=HYPERLINK("http://evil.example/","x")',
        credential_source="byok",
        at=at(2026, 11, 3),
    )
    AIRequestFactory(workspace=workspace, user=formula_user, model="@SUM(A1)", at=at(2026, 11, 4))

    rows = rows_of(admin_client.get(EXPORT + NOVEMBER))

    assert rows[0]["user"] == "'=1+2@example.com"
    assert rows[0]["model"] == """'=HYPERLINK("http://evil.example/","x")"""
    assert rows[1]["model"] == "'@SUM(A1)"
    assert rows[0]["created_at"] == "2026-11-03T00:00:00Z"  # numbers and dates untouched


@pytest.mark.parametrize("separator", [";", "\t", ",", "|"])
def test_a_formula_after_any_separator_is_kept_as_text(admin_client, workspace, separator):
    # Spreadsheets in many locales split on ";" or tabs: each piece must stay text too.
    AIRequestFactory(
        workspace=workspace,
        model=f"x{separator}=2+3{separator} @SUM(A1){separator}-1",
        at=at(2026, 11, 3),
    )
    response = admin_client.get(EXPORT + NOVEMBER)
    body = b"".join(response.streaming_content).decode()

    data_line = body.splitlines()[1]
    assert f"\"x{separator}'=2+3{separator} '@SUM(A1){separator}'-1\"" in data_line
    for piece in data_line.replace(separator, ",").split(","):
        assert not piece.strip().strip('"').startswith(("=", "+", "-", "@")), piece
    assert rows_of(admin_client.get(EXPORT + NOVEMBER))[0]["input_tokens"] == "100"


@pytest.mark.parametrize(
    "query", ["?from=9999-12-01&to=9999-12-31", "?from=0001-01-01&to=0001-01-02"]
)
def test_dates_out_of_range_are_a_400_not_a_500(admin_client, workspace, query):
    for url in (EXPORT, EXPORT.replace("export.csv", "")):
        response = admin_client.get(url + query)
        assert response.status_code == 400, url
        assert "between" in response.content.decode()


def test_a_deleted_users_requests_stay_in_the_export(admin_client, member_user, usage):
    member_user.delete()

    rows = rows_of(admin_client.get(EXPORT + NOVEMBER))

    assert [r["user"] for r in rows].count("(deleted user)") == 2


def test_no_key_reaches_the_export(admin_client, workspace, admin_user, saved_key):
    AIRequestFactory(
        workspace=workspace,
        user=admin_user,
        credential_source="byok",
        error_type="llm_key_invalid",
        at=at(2026, 11, 3),
    )

    text = b"".join(admin_client.get(EXPORT + NOVEMBER).streaming_content).decode()

    assert saved_key.raw not in text and SENTINEL_KEY not in text
    assert "sk-ant-" not in text


def test_the_export_streams_in_chunks_of_rows(admin_client, workspace, admin_user, monkeypatch):
    monkeypatch.setattr(usage_views, "CSV_ROWS_PER_WRITE", 10)
    for n in range(25):
        AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 1 + n))

    response = admin_client.get(EXPORT + NOVEMBER)

    chunks = list(response.streaming_content)
    assert len(chunks) == 3  # header + 10, 10, the last 5
    assert b"".join(chunks).decode().count("\n") == 26


def test_the_export_carries_cost_and_the_providers_request_id(admin_client, workspace, settings):
    AIRequestFactory(
        workspace=workspace,
        credential_source="platform",
        credits_charged=81,
        provider_request_id="req_011CPlatform",
        at=at(2026, 11, 3),
    )
    AIRequestFactory(
        workspace=workspace,
        credential_source="byok",
        input_tokens=1_000_000,
        output_tokens=0,
        provider_request_id="req_011CByok",
        at=at(2026, 11, 4),
    )
    AIRequestFactory(
        workspace=workspace, model="no-such-model", credential_source="byok", at=at(2026, 11, 5)
    )
    rows = rows_of(admin_client.get(EXPORT + NOVEMBER))

    assert [r["request_id"] for r in rows] == ["req_011CPlatform", "req_011CByok", ""]
    assert rows[0]["credits_charged"] == "81" and rows[0]["estimated_usd"] == ""
    # A million input tokens at the table's list price for the model, in dollars.
    per_million = settings.AI_MODEL_PRICES["claude-sonnet-5"]["input"]  # credits
    assert float(rows[1]["estimated_usd"]) == pytest.approx(per_million / 10_000)
    assert rows[2]["estimated_usd"] == ""  # no list price: left empty, not guessed


def test_each_row_names_its_provider(admin_client, workspace, admin_user):
    AIRequestFactory(
        workspace=workspace, user=admin_user, provider="openai", model="gpt-5-mini",
        at=at(2026, 11, 2),
    )  # fmt: skip
    AIRequestFactory(
        workspace=workspace, user=admin_user, provider="gemini", model="gemini-2.5-flash",
        at=at(2026, 11, 3),
    )  # fmt: skip
    AIRequestFactory(workspace=workspace, user=admin_user, at=at(2026, 11, 4))

    rows = rows_of(admin_client.get(EXPORT + NOVEMBER))

    assert [(r["provider"], r["model"]) for r in rows][:2] == [
        ("openai", "gpt-5-mini"),
        ("gemini", "gemini-2.5-flash"),
    ]
    assert rows[2]["provider"] == "anthropic"
