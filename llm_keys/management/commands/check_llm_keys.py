from django.core.management.base import CommandError

from llm_keys.models import KeyStatus, LLMKey
from llm_keys.ratelimit import permit_reserve, permit_wait
from llm_keys.services import Actor, KeyUnreadableError, llm_key_check

from ._operator import OperatorCommand, key_ring_or_error, provider_or_error, workspace_or_error

UNREADABLE = "unreadable"


class Command(OperatorCommand):
    help = (
        "Check stored keys with their provider now, one after another, and print each status "
        "before and after. Exits non-zero when a key is invalid or cannot be decrypted."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG", help="Default: every workspace.")
        parser.add_argument(
            "--provider", help="Check only this provider's keys (anthropic, openai, gemini)."
        )

    def handle(self, *args, slugs, provider=None, **options):
        key_ring_or_error()
        keys = LLMKey.objects.select_related("workspace").order_by("workspace__slug", "provider")
        if provider is not None:
            keys = keys.filter(provider=provider_or_error(provider))
        if slugs:
            workspaces = [workspace_or_error(slug) for slug in slugs]
            keys = keys.filter(workspace__in=workspaces)
        actor = Actor(label="operator (check_llm_keys)")
        rows = []
        failed = []
        for llm_key in keys:
            before = llm_key.status
            # The same provider-wide limit as the workers': an operator's run waits its turn.
            permit_wait(permit_reserve(f"llm-key-check:{llm_key.provider}"))
            try:
                result = llm_key_check(llm_key=llm_key, actor=actor)
            except KeyUnreadableError as exc:
                after, note = UNREADABLE, str(exc)
            else:
                llm_key.refresh_from_db()
                after, note = llm_key.status, result.reason
            rows.append(
                (llm_key.workspace.slug, llm_key.provider, llm_key.masked, before, after, note)
            )
            if after in (KeyStatus.INVALID, UNREADABLE):
                failed.append(f"{llm_key.workspace.slug} ({after})")
        if not rows:
            self.stdout.write("No stored keys to check.")
            return
        self._print_table(rows)
        if failed:
            raise CommandError(f"{len(failed)} of {len(rows)} keys failed: {', '.join(failed)}.")
        self.stdout.write(f"{len(rows)} keys checked; none is invalid.")

    def _print_table(self, rows):
        header = ("WORKSPACE", "PROVIDER", "KEY", "STATUS", "NOTE")
        cells = [
            (ws, provider, hint, f"{before} → {after}", note)
            for ws, provider, hint, before, after, note in rows
        ]
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(4)]
        for row in [header, *cells]:
            line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False))
            self.stdout.write(f"{line}  {row[4]}".rstrip())
