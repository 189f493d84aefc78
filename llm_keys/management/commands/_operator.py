"""What every operator command checks first, each failure a one-line CommandError."""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError, CommandParser

from llm_keys.crypto import KeyRing, KeyRingError, get_key_ring
from llm_keys.models import Provider
from workspaces.models import Workspace


def key_ring_or_error() -> KeyRing:
    """Return the configured key ring, or stop with the reason it is unusable."""
    try:
        return get_key_ring()
    except KeyRingError as exc:
        raise CommandError(str(exc)) from None


# Broader than any one provider's shape: a fragment of a key is refused as well.
LOOKS_LIKE_KEY = re.compile(r"sk-[A-Za-z0-9_-]*|AIza[A-Za-z0-9_-]*")
KEY_IN_ARGV = (
    "A key was given on the command line; keys are only read from standard input. "
    "Treat that key as exposed (shell history, process list): revoke it in the Anthropic Console."
)


class OperatorCommand(BaseCommand):
    """A command that never echoes a key an operator typed into its arguments by mistake."""

    # System checks print a multi-line report; these commands check the key ring themselves
    # and stop with one line instead.
    requires_system_checks = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        report = parser.error

        def error(message: str):
            if LOOKS_LIKE_KEY.search(message):
                message = KEY_IN_ARGV
            return report(message)

        parser.error = error
        return parser


def workspace_or_error(slug: str) -> Workspace:
    if LOOKS_LIKE_KEY.match(slug.strip()):
        raise CommandError(KEY_IN_ARGV)
    workspace = Workspace.objects.filter(slug=slug.strip().lower()).first()
    if workspace is None:
        raise CommandError(
            f"No workspace has the slug '{slug}'. List them in the admin, or create one with "
            "'manage.py create_workspace'."
        )
    return workspace


def provider_or_error(provider: str) -> str:
    if provider not in Provider.values:
        if LOOKS_LIKE_KEY.search(provider):
            raise CommandError(KEY_IN_ARGV)
        raise CommandError(
            f"Unknown provider '{provider}'. Known providers: {', '.join(Provider.values)}."
        )
    return provider
