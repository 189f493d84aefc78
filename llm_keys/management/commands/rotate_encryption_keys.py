import time

from django.core.management.base import CommandError

from llm_keys import rotation

from ._operator import OperatorCommand, key_ring_or_error

MAX_BATCH_SIZE = 10_000


class Command(OperatorCommand):
    help = (
        "Re-encrypt every stored key under the primary (first) entry of "
        "LLM_KEY_ENCRYPTION_KEYS, in short batches. Safe to interrupt and rerun; a second run "
        "rewrites nothing. --verify decrypts every key and fails while any key is still under "
        "another entry or cannot be decrypted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, metavar="N")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be rewritten; write nothing."
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Only check; exit non-zero until rotation is done.",
        )

    def handle(self, *args, batch_size, dry_run, verify, **options):
        ring = key_ring_or_error()
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        if verify:
            return self._verify(ring, batch_size)
        counts = rotation.llm_keys_count_by_key_id()
        total = sum(counts.values())
        pending = total - counts.get(ring.primary_id, 0)
        self.stdout.write(
            f"Primary key id '{ring.primary_id}'. {total} stored keys, {pending} under "
            f"another key id{self._by_key_id(counts, ring.primary_id)}."
        )
        started = time.monotonic()
        batches = rewritten = changed = 0
        unreadable: list[int] = []
        after_pk = 0
        while True:
            result = rotation.llm_keys_reencrypt_batch(
                ring=ring, after_pk=after_pk, batch_size=batch_size, dry_run=dry_run
            )
            if result.last_pk is None:
                break
            batches += 1
            after_pk = result.last_pk
            rewritten += result.rewritten
            changed += result.changed_meanwhile
            unreadable += result.unreadable_ids
            if options["verbosity"] >= 2:
                self.stdout.write(f"  batch {batches}: up to id {after_pk}, {rewritten} so far")
        elapsed = time.monotonic() - started
        verb = "Would re-encrypt" if dry_run else "Re-encrypted"
        self.stdout.write(
            f"{verb} {rewritten} keys in {batches} batches ({elapsed:.1f} s); "
            f"{changed} changed meanwhile (already rewritten by the application); "
            f"{len(unreadable)} unreadable."
        )
        if unreadable:
            raise CommandError(self._unreadable_message(unreadable))
        if not dry_run:
            self.stdout.write("Next: run 'manage.py rotate_encryption_keys --verify'.")

    def _verify(self, ring, batch_size):
        report = rotation.llm_keys_verify(ring=ring, batch_size=max(batch_size, 2000))
        self.stdout.write(
            f"{report.total} stored keys: {report.on_primary} decrypt under the primary key id "
            f"'{ring.primary_id}'{self._by_key_id(report.by_key_id, ring.primary_id)}; "
            f"{len(report.unreadable_ids)} unreadable."
        )
        if report.unreadable_ids:
            raise CommandError(self._unreadable_message(report.unreadable_ids))
        if not report.ok:
            raise CommandError(
                f"{report.total - report.on_primary} keys are still under another key id: run "
                "'manage.py rotate_encryption_keys', then verify again before dropping any key "
                "from the ring."
            )
        self.stdout.write(
            f"OK: every key is under '{ring.primary_id}'; the other ring entries can be dropped."
        )

    @staticmethod
    def _by_key_id(counts, primary_id):
        others = [
            f"'{key_id}': {n}" for key_id, n in sorted(counts.items()) if key_id != primary_id
        ]
        return f" ({', '.join(others)})" if others else ""

    @staticmethod
    def _unreadable_message(ids):
        shown = ", ".join(str(pk) for pk in ids[:10]) + (" …" if len(ids) > 10 else "")
        return (
            f"{len(ids)} stored keys cannot be decrypted with any key in LLM_KEY_ENCRYPTION_KEYS "
            f"(LLM key ids {shown}); they were left as they are. Restore the ring entry that "
            "wrote them, then run again."
        )
