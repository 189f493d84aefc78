import getpass
import sys

from django.core.management.base import CommandError
from django.views.decorators.debug import sensitive_variables

from llm_keys.models import Provider
from llm_keys.services import Actor, KeyFormatError, KeyNotSavedError, llm_key_set

from ._operator import (
    KEY_IN_ARGV,
    OperatorCommand,
    key_ring_or_error,
    provider_or_error,
    workspace_or_error,
)


class Command(OperatorCommand):
    help = (
        "Store a workspace's provider key, replacing any key it had. The key is read from "
        "standard input (a prompt without echo on a terminal), never from the command line, "
        "and is checked with the provider first unless --no-check is given."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--provider", default=Provider.ANTHROPIC)
        parser.add_argument(
            "--no-check",
            action="store_true",
            help="Save without asking the provider (the key is stored as unverified).",
        )
        # Only to refuse a key typed after the slug without echoing it back.
        parser.add_argument("unexpected", nargs="*", help="(not accepted)")

    @sensitive_variables("raw_key")
    def handle(self, *args, slug, provider, no_check, unexpected, **options):
        if unexpected:
            raise CommandError(KEY_IN_ARGV)
        key_ring_or_error()
        provider = provider_or_error(provider)
        workspace = workspace_or_error(slug)
        raw_key = self._read_key(options.get("stdin") or sys.stdin)
        try:
            llm_key = llm_key_set(
                workspace=workspace,
                provider=provider,
                raw_key=raw_key,
                actor=Actor(label="operator (set_llm_key)"),
                check=not no_check,
            )
        except KeyFormatError as exc:
            raise CommandError(str(exc)) from None
        except KeyNotSavedError as exc:
            raise CommandError(
                f"The key was not saved: {exc.reason} Any key already in place is unchanged."
            ) from None
        self.stdout.write(
            f"Saved the {provider} key {llm_key.masked} for workspace '{workspace.slug}': "
            f"{llm_key.status}. {llm_key.status_reason}"
        )

    @sensitive_variables("value")
    def _read_key(self, stream) -> str:
        value = getpass.getpass("API key (input hidden): ") if stream.isatty() else stream.read()
        if not value or not value.strip():
            raise CommandError(
                "No key on standard input. Pipe the key in, e.g. "
                "'manage.py set_llm_key SLUG < keyfile', or run it in a terminal to be prompted."
            )
        return value
