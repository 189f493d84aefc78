from django.core.management.base import BaseCommand, CommandError

from llm_keys.crypto import KeyRingError, generate_entry


class Command(BaseCommand):
    help = (
        "Print a new LLM_KEY_ENCRYPTION_KEYS entry '<id>:<base64 key>'. Put it first in the "
        "ring to make it the primary."
    )
    # It is how one makes a ring: it must run where there is none yet (or a broken one).
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="key_id", help="Key id (default: random).")

    def handle(self, *args, key_id=None, **options):
        try:
            self.stdout.write(generate_entry(key_id))
        except KeyRingError as exc:
            raise CommandError(str(exc)) from None
