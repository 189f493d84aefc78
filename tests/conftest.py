import pytest
from django.db import connection
from django.test import Client

from llm_keys.services import Actor, llm_key_set
from tests.anthropic_standin import StandIn
from tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory, fake_key

SENTINEL_KEY = "sk-ant-api03-SENTINEL0leak0check0Zq9xW4vT7yR2pL5mN8bK3jH6gF1dS0aQ-AbCd"
# The same for the other providers, each in its provider's shape (SPEC §18).
OPENAI_SENTINEL_KEY = "sk-proj-OPENAI0SENTINEL0leak0check0Zq9xW4vT7yR2pL5mN8bK3jH6gF1dS0aQ-WxYz"
GEMINI_SENTINEL_KEY = "AIzaSyGEMINI0SENTINEL0leak0check0Qw3rTu"


@pytest.fixture(scope="session")
def standin_server():
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def standin(standin_server, settings):
    """Every test talks to the loopback stand-in, never to the real provider."""
    standin_server.reset()
    standin_server.state.timeout_sleep = 2.0
    settings.ANTHROPIC_BASE_URL = standin_server.url
    settings.LLM_KEY_CHECK_TIMEOUT_SECONDS = 0.5
    settings.PLATFORM_ANTHROPIC_API_KEY = (
        "sk-ant-api03-PLATFORM0key0for0tests0only0xxxxxxxxxxxxPLAT"
    )
    return standin_server


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme", slug="acme")


@pytest.fixture
def admin_user(workspace):
    membership = MembershipFactory(
        workspace=workspace, role="admin", user__email="admin@example.com"
    )
    return membership.user


@pytest.fixture
def member_user(workspace):
    membership = MembershipFactory(
        workspace=workspace, role="member", user__email="member@example.com"
    )
    return membership.user


@pytest.fixture
def outsider_user(db):
    other = WorkspaceFactory(name="Other", slug="other")
    membership = MembershipFactory(
        workspace=other, role="admin", user__email="outsider@example.com"
    )
    return membership.user


def _client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return _client_for(admin_user)


@pytest.fixture
def member_client(member_user):
    return _client_for(member_user)


@pytest.fixture
def outsider_client(outsider_user):
    return _client_for(outsider_user)


@pytest.fixture
def login_password():
    return PASSWORD


@pytest.fixture
def saved_key(workspace, admin_user):
    """Store a valid key for the workspace (checked against the stand-in) and return it."""
    raw = fake_key()
    llm_key = llm_key_set(workspace=workspace, raw_key=raw, actor=Actor(user=admin_user))
    llm_key.raw = raw
    return llm_key


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture(scope="session")
def openai_standin_server():
    from tests.openai_standin import OpenAIStandIn

    server = OpenAIStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gemini_standin_server():
    from tests.gemini_standin import GeminiStandIn

    server = GeminiStandIn().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def openai_standin(openai_standin_server, settings):
    """OpenAI requests go to the loopback stand-in, never to the real provider."""
    openai_standin_server.reset()
    openai_standin_server.state.timeout_sleep = 2.0
    settings.OPENAI_BASE_URL = openai_standin_server.base_url
    return openai_standin_server


@pytest.fixture(autouse=True)
def gemini_standin(gemini_standin_server, settings):
    """Gemini requests go to the loopback stand-in, never to the real provider."""
    gemini_standin_server.reset()
    gemini_standin_server.state.timeout_sleep = 2.0
    settings.GEMINI_BASE_URL = gemini_standin_server.url
    return gemini_standin_server
