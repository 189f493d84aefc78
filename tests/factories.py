import secrets

import factory
from django.contrib.auth import get_user_model

from workspaces.models import Membership, Workspace

PASSWORD = "correct-horse-battery-staple"


def fake_key(marker: str = "") -> str:
    """A well-formed, random Anthropic-shaped key; a marker picks the stand-in's behaviour."""
    key = "sk-ant-api03-" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
    return f"{key}-{marker}" if marker else key


def fake_openai_key(marker: str = "") -> str:
    """A well-formed, random OpenAI project key; a marker picks the stand-in's behaviour."""
    key = "sk-proj-" + secrets.token_urlsafe(48).replace("-", "x").replace("_", "y")
    return f"{key}-{marker}" if marker else key


def fake_gemini_key(marker: str = "") -> str:
    """A well-formed, random Gemini API key (``AIza`` and 35 characters); a marker takes the
    end of the 35, so the key keeps Google's shape."""
    tail = f"-{marker}" if marker else ""
    body = secrets.token_urlsafe(35).replace("-", "x").replace("_", "y")
    return "AIza" + body[: 35 - len(tail)] + tail


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.LazyAttribute(lambda u: u.email)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


def api_token_for(workspace, name: str = "ci job", user=None):
    """Create a live API token through the service; return (row, the token itself)."""
    from api_tokens.services import Actor, api_token_create

    created = api_token_create(workspace=workspace, name=name, actor=Actor(user=user, label="test"))
    return created.token, created.raw_token


class AIRequestFactory(factory.django.DjangoModelFactory):
    """A finished AI request; ``at=`` (an aware datetime) places it in time."""

    class Meta:
        model = "ai_gateway.AIRequest"

    workspace = factory.SubFactory(WorkspaceFactory)
    user = None
    provider = "anthropic"
    model = "claude-sonnet-5"
    credential_source = "platform"
    outcome = "ok"
    input_tokens = 100
    output_tokens = 50
    credits_charged = 0
    at = None

    @classmethod
    def _create(cls, model_class, *args, at=None, **kwargs):
        obj = super()._create(model_class, *args, **kwargs)
        if at is not None:
            # created_at is auto_now_add: move the row to its moment after the insert.
            model_class.objects.filter(pk=obj.pk).update(created_at=at)
            obj.created_at = at
        return obj


def support_group():
    """The Support group as the data migrations make it, made again if a transactional test
    before this one flushed the tables (a flush removes what migrations inserted)."""
    from importlib import import_module
    from types import SimpleNamespace

    from django.apps import apps
    from django.contrib.auth.models import Group
    from django.db import connection

    group = Group.objects.filter(name="Support").first()
    if group is not None:
        return group
    editor = SimpleNamespace(connection=connection)
    for module, forward in (
        ("workspaces.migrations.0002_support_group", "create_support_group"),
        ("workspaces.migrations.0004_support_clears_login_lockouts", "grant"),
        ("credits.migrations.0004_support_sees_limits_and_alerts", "grant"),
        ("api_tokens.migrations.0002_support_permissions", "add_permissions"),
    ):
        getattr(import_module(module), forward)(apps, editor)
    return Group.objects.get(name="Support")
