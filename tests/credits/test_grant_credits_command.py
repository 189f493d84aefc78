import io

import pytest
from django.core.management import call_command
from django.db import connections

from credits.management.commands.grant_credits import Command
from credits.models import CreditEntry
from credits.selectors import credits_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the command as `manage.py grant_credits ...` would: return (exit code, out, err)."""
    # run_from_argv closes every connection when it ends, which would end the test's transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    return lambda *args: _run(*args, capsys=capsys)


def _run(*args, capsys):
    code = 0
    try:
        Command().run_from_argv(["manage.py", "grant_credits", *args])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_grant_credits_adds_credits_and_prints_the_new_balance(workspace):
    out = io.StringIO()
    call_command("grant_credits", "acme", "1500", "--reason", "Pilot customer", stdout=out)
    assert out.getvalue().strip() == (
        "Granted 1,500 credits to 'acme'. New balance: 1,500 credits."
    )
    assert credits_balance(workspace=workspace) == 1_500
    entry = CreditEntry.objects.get()
    assert (entry.kind, entry.amount, entry.reason) == ("grant", 1_500, "Pilot customer")

    call_command("grant_credits", "acme", "500", "--reason", "More", stdout=out)
    assert "New balance: 2,000 credits." in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "100", "--reason", "x"], "No workspace with slug 'nope'."),
        (["acme", "ten", "--reason", "x"], "AMOUNT must be a whole number of credits, not 'ten'."),
        (["acme", "1.5", "--reason", "x"], "AMOUNT must be a whole number of credits, not '1.5'."),
        (["acme", "0", "--reason", "x"], "AMOUNT must be greater than zero, not 0."),
        (["acme", "-5", "--reason", "x"], "AMOUNT must be greater than zero, not -5."),
        (["acme", "100"], "--reason is required: say why the credits are granted."),
        (
            ["acme", "1" + "0" * 16, "--reason", "x"],
            "A credit amount is at most 1,000,000,000,000,000 credits.",
        ),
        (["acme", "100", "--reason", "x" * 501], "A reason is at most 500 characters."),
        (
            ["acme", "100", "--reason", "  "],
            "--reason is required: say why the credits are granted.",
        ),
    ],
)
def test_grant_credits_refuses_bad_input_with_one_line(workspace, run, args, message):
    code, out, err = run(*args)
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(message)
    assert CreditEntry.objects.count() == 0
    assert credits_balance(workspace=workspace) == 0
