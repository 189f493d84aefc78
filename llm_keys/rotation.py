"""Move stored keys onto the primary entry of the key ring while the application keeps running.

Invariants:
- a row is only ever rewritten with a ciphertext that was decrypted back under the primary
  before it is written, so no step leaves a row that the ring cannot decrypt;
- a rewrite is a compare-and-swap on the row's old (key id, ciphertext): a key that was
  replaced meanwhile (``llm_key_set`` writes under the primary anyway) is never overwritten
  with the stale one, and no row is locked while keys are decrypted;
- batches commit one by one, so a run can be killed at any point and rerun: it picks up the
  rows still under another key, and a run with nothing left to do writes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count
from django.views.decorators.debug import sensitive_variables

from .crypto import DecryptionError, EncryptedValue, KeyRing
from .models import KeyEvent, LLMKey, associated_data_for

ACTOR_LABEL = "operator (rotate_encryption_keys)"
# Rows per UPDATE statement: 4 parameters each stays under SQLite's 32,766.
SWAP_CHUNK = 1000
ROW_FIELDS = ("pk", "workspace_id", "provider", "hint", "encryption_key_id", "ciphertext")


@dataclass(frozen=True, slots=True)
class _Rewrite:
    pk: int
    workspace_id: int
    provider: str
    hint: str
    old: EncryptedValue
    new: EncryptedValue


@dataclass(slots=True)
class BatchResult:
    """What one batch did; ``last_pk`` is None when there was nothing left to read."""

    last_pk: int | None = None
    scanned: int = 0
    rewritten: int = 0
    changed_meanwhile: int = 0
    unreadable_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class VerifyReport:
    total: int = 0
    on_primary: int = 0
    by_key_id: Counter = field(default_factory=Counter)
    unreadable_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.on_primary == self.total and not self.unreadable_ids


def llm_keys_count_by_key_id() -> Counter:
    """Return how many stored keys each key ring entry wrote."""
    rows = (
        LLMKey.objects.order_by()
        .values_list("encryption_key_id")
        .annotate(n=Count("pk"))
        .values_list("encryption_key_id", "n")
    )
    return Counter(dict(rows))


@sensitive_variables("plaintext")
def _prepare(ring: KeyRing, rows: list[tuple], result: BatchResult) -> list[_Rewrite]:
    rewrites = []
    for pk, workspace_id, provider, hint, key_id, ciphertext in rows:
        associated_data = associated_data_for(workspace_id, provider)
        old = EncryptedValue(key_id, bytes(ciphertext))
        try:
            plaintext = ring.decrypt(old, associated_data)
        except DecryptionError:
            result.unreadable_ids.append(pk)
            continue
        new = ring.encrypt(plaintext, associated_data)
        if ring.decrypt(new, associated_data) != plaintext:
            raise DecryptionError("A re-encrypted key did not decrypt back; nothing was written.")
        rewrites.append(_Rewrite(pk, workspace_id, provider, hint, old, new))
    return rewrites


def _record_events(rewrites: list[_Rewrite]) -> None:
    KeyEvent.objects.bulk_create(
        KeyEvent(
            workspace_id=rewrite.workspace_id,
            provider=rewrite.provider,
            action=KeyEvent.Action.REENCRYPTED,
            actor_label=ACTOR_LABEL,
            hint=rewrite.hint,
            detail=f"re-encrypted from key id '{rewrite.old.key_id}' to '{rewrite.new.key_id}'",
        )
        for rewrite in rewrites
    )


def _compare_and_swap(rewrites: list[_Rewrite]) -> set[int]:
    """Rewrite each row whose (key id, ciphertext) is still the one that was read, in one
    statement; return the ids rewritten. A row the application changed meanwhile is left."""
    if not rewrites:
        return set()
    table = connection.ops.quote_name(LLMKey._meta.db_table)
    ids = [rewrite.pk for rewrite in rewrites]
    old_key_ids = [rewrite.old.key_id for rewrite in rewrites]
    old_ciphertexts = [rewrite.old.ciphertext for rewrite in rewrites]
    new_ciphertexts = [rewrite.new.ciphertext for rewrite in rewrites]
    # Only the quoted table name and placeholders are interpolated; every value is a parameter.
    if connection.vendor == "postgresql":
        # Four array parameters: a short statement whatever the batch size, joined on the
        # primary key.
        source = (
            "unnest(%s::bigint[], %s::text[], %s::bytea[], %s::bytea[]) AS v(id, kid, old, new)"
        )
        params = [ids, old_key_ids, old_ciphertexts, new_ciphertexts]
        columns = ("v.id", "v.kid", "v.old", "v.new")
    else:
        source = "(VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(rewrites)) + ") AS v"
        params = [
            value
            for row in zip(ids, old_key_ids, old_ciphertexts, new_ciphertexts, strict=True)
            for value in row
        ]
        # Unnamed VALUES columns are column1..column4 (SQLite >= 3.35 for RETURNING).
        columns = ("v.column1", "v.column2", "v.column3", "v.column4")
    v_id, v_kid, v_old, v_new = columns
    # raw-sql: one UPDATE ... FROM (VALUES ...) ... RETURNING for a whole batch, each row
    # guarded by its own old values; the ORM's bulk_update has no per-row condition, and one
    # update() per row would make a 100,000-key rotation 100,000 statements.
    sql = (
        f"UPDATE {table} SET ciphertext = {v_new}, encryption_key_id = %s "  # noqa: S608
        f"FROM {source} "
        f"WHERE {table}.id = {v_id} AND {table}.encryption_key_id = {v_kid} "
        f"AND {table}.ciphertext = {v_old} RETURNING {table}.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [rewrites[0].new.key_id, *params])
        return {row[0] for row in cursor.fetchall()}


def llm_keys_reencrypt_batch(
    *, ring: KeyRing, after_pk: int = 0, batch_size: int = 500, dry_run: bool = False
) -> BatchResult:
    """Re-encrypt under the primary the next batch of keys (by id, after ``after_pk``)
    that another ring entry wrote; one short transaction, one audit event per key."""
    rows = list(
        LLMKey.objects.exclude(encryption_key_id=ring.primary_id)
        .filter(pk__gt=after_pk)
        .order_by("pk")
        .values_list(*ROW_FIELDS)[:batch_size]
    )
    result = BatchResult(scanned=len(rows))
    if not rows:
        return result
    result.last_pk = rows[-1][0]
    rewrites = _prepare(ring, rows, result)
    if dry_run:
        result.rewritten = len(rewrites)
        return result
    with transaction.atomic():
        swapped: set[int] = set()
        for start in range(0, len(rewrites), SWAP_CHUNK):
            swapped |= _compare_and_swap(rewrites[start : start + SWAP_CHUNK])
        done = [rewrite for rewrite in rewrites if rewrite.pk in swapped]
        _record_events(done)
    result.rewritten = len(done)
    result.changed_meanwhile = len(rewrites) - len(done)
    return result


def llm_keys_verify(*, ring: KeyRing, batch_size: int = 2000) -> VerifyReport:
    """Decrypt every stored key and count them by the ring entry that wrote them."""
    report = VerifyReport()
    after_pk = 0
    while True:
        rows = list(
            LLMKey.objects.filter(pk__gt=after_pk)
            .order_by("pk")
            .values_list(*ROW_FIELDS)[:batch_size]
        )
        if not rows:
            return report
        after_pk = rows[-1][0]
        for pk, workspace_id, provider, _hint, key_id, ciphertext in rows:
            report.total += 1
            report.by_key_id[key_id] += 1
            try:
                ring.decrypt(
                    EncryptedValue(key_id, bytes(ciphertext)),
                    associated_data_for(workspace_id, provider),
                )
            except DecryptionError:
                report.unreadable_ids.append(pk)
                continue
            if key_id == ring.primary_id:
                report.on_primary += 1
