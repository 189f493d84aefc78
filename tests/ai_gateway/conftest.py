import pytest

from credits.selectors import credits_balance
from credits.services import credits_grant
from tests.factories import fake_gemini_key, fake_openai_key


@pytest.fixture
def funded(workspace):
    """Give the workspace a full balance of AI credits; return the granted amount."""
    amount = 1_000_000
    credits_grant(workspace=workspace, amount=amount, reason="test allowance")
    assert credits_balance(workspace=workspace) == amount
    return amount


@pytest.fixture
def platform_key(settings):
    return settings.PLATFORM_ANTHROPIC_API_KEY


@pytest.fixture
def platform_keys(settings):
    """The platform has OpenAI and Gemini keys: their priced models go on AI credits."""
    settings.PLATFORM_OPENAI_API_KEY = fake_openai_key()
    settings.PLATFORM_GEMINI_API_KEY = fake_gemini_key()
