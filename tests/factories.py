import secrets

import factory
from django.contrib.auth import get_user_model

from workspaces.models import Membership, Workspace

PASSWORD = "correct-horse-battery-staple"


def fake_key(marker: str = "") -> str:
    """A well-formed, random Anthropic-shaped key; a marker picks the stand-in's behaviour."""
    key = "sk-ant-api03-" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
    return f"{key}-{marker}" if marker else key


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
