import secrets

from django.core.management.base import BaseCommand

from workspaces.models import Membership, Workspace
from workspaces.services import user_get_or_create, workspace_create

DEMO_EMAIL = "admin@demo.local"


class Command(BaseCommand):
    help = "Create the demo workspace and its admin for local development, and print the login."

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(12)
        workspace = Workspace.objects.filter(slug="demo").first()
        if workspace is None:
            workspace = workspace_create(
                slug="demo", name="Demo workspace", admin_email=DEMO_EMAIL, admin_password=password
            )
        user, _ = user_get_or_create(email=DEMO_EMAIL)
        # A fresh password every start, so the printed login always works.
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        Membership.objects.get_or_create(
            workspace=workspace, user=user, defaults={"role": Membership.Role.ADMIN}
        )
        self.stdout.write(
            "\n  Demo login\n"
            f"    email:    {DEMO_EMAIL}\n"
            f"    password: {password}\n"
            f"    settings: /w/{workspace.slug}/settings/llm-key/\n"
        )
