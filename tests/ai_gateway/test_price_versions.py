"""The price table is versioned data: each usage row stores the prices it was charged at, and
a later price version never re-prices an old row (issue 19, item 4; decision 110)."""

import datetime

from django.utils import timezone

from ai_gateway.models import AIRequest
from credits.pricing import get_price, price_table_at
from tests.ai_gateway.helpers import MODEL, body, post


def _new_version(settings, *, effective_from: datetime.datetime, input: int, output: int):
    """A price change as operators make it: a new version at the end, the table in force."""
    prices = {
        model: dict(row) for model, row in settings.AI_MODEL_PRICE_VERSIONS[-1]["prices"].items()
    }
    prices[MODEL] = {**prices[MODEL], "input": input, "output": output}
    settings.AI_MODEL_PRICE_VERSIONS = [
        *settings.AI_MODEL_PRICE_VERSIONS,
        {"effective_from": effective_from.isoformat(), "prices": prices},
    ]
    settings.AI_MODEL_PRICES = prices


def test_a_later_price_version_does_not_reprice_earlier_requests(
    member_client, workspace, funded, standin, settings
):
    first = post(member_client, body())
    assert first.status_code == 200, first.content
    old_row = AIRequest.objects.get()
    old_charge, old_prices = old_row.credits_charged, dict(old_row.prices)

    _new_version(settings, effective_from=timezone.now(), input=60_000, output=300_000)
    second = post(member_client, body())

    old_row.refresh_from_db()
    new_row = AIRequest.objects.exclude(pk=old_row.pk).get()
    assert (old_row.credits_charged, old_row.prices) == (old_charge, old_prices)
    assert (old_prices["input"], old_prices["output"]) == (30_000, 150_000)
    assert (new_row.prices["input"], new_row.prices["output"]) == (60_000, 300_000)
    assert new_row.prices["effective_from"] > old_prices["effective_from"]
    # Same request, same usage: twice the rates, twice the charge (to the rounding).
    assert (new_row.input_tokens, new_row.output_tokens) == (
        old_row.input_tokens,
        old_row.output_tokens,
    )
    assert second.json()["credits_charged"] >= 2 * old_charge - 1


def test_the_price_in_force_is_looked_up_by_time(settings):
    change = datetime.datetime(2027, 3, 1, tzinfo=datetime.UTC)
    previous = settings.AI_MODEL_PRICE_VERSIONS[-1]["effective_from"]
    _new_version(settings, effective_from=change, input=60_000, output=300_000)

    before = get_price(MODEL, at=change - datetime.timedelta(seconds=1))
    after = get_price(MODEL, at=change)
    assert (before.input, after.input) == (30_000, 60_000)
    assert before.effective_from == previous
    assert after.effective_from == change.isoformat()
    assert price_table_at(change)[0] == change.isoformat()
    # Before the first version nothing was sold: the first version answers.
    assert get_price(MODEL, at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)).input == 30_000


def test_byok_rows_store_no_credit_prices(member_client, workspace, standin, settings):
    from llm_keys.services import Actor, llm_key_set
    from tests.factories import fake_key

    llm_key_set(
        workspace=workspace, provider="anthropic", raw_key=fake_key(), actor=Actor(label="t")
    )
    assert post(member_client, body()).json()["credential_source"] == "byok"
    assert AIRequest.objects.get().prices is None
