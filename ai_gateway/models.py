"""One row per AI request of a workspace: who asked, which credentials paid, what it cost.

Invariants:
- a row never holds a prompt, an answer or a key — only counts, names and outcomes;
- ``credits_charged`` is 0 unless ``credential_source`` is ``platform`` and the outcome is
  ``ok`` (``ai_gateway_airequest_byok_free``, ``ai_gateway_airequest_credits_nonneg``);
- rows are written once, when the request ends, and never updated; a request whose serving
  process died gets its row from the sweep that charges its reservation, outcome
  ``process_died`` (docs/decisions/107), and the dead process never writes one;
- ``prices`` holds the rates a credits request was charged at, so a later price version
  never changes what an old row says it cost.
"""

from django.conf import settings
from django.db import models

from llm_keys.models import CredentialSource


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    PROVIDER_ERROR = "provider_error", "Provider error"
    KEY_REJECTED = "key_rejected", "Key rejected by the provider"
    KEY_INVALID = "key_invalid", "Refused: key invalid"
    KEY_UNREADABLE = "key_unreadable", "Refused: key undecryptable"
    INSUFFICIENT_CREDITS = "insufficient_credits", "Refused: insufficient credits"
    BAD_REQUEST = "bad_request", "Bad request"
    NOT_CONFIGURED = "not_configured", "Refused: platform credentials missing"
    CLIENT_DISCONNECTED = "client_disconnected", "Client went away"
    CREDITS_EXHAUSTED = "credits_exhausted", "Stopped: AI credits ran out"
    TIMED_OUT = "timed_out", "Stopped: longest request time reached"
    USAGE_UNVERIFIED = "usage_unverified", "Charged the reservation: usage missing or garbled"
    RATE_LIMITED = "rate_limited", "Refused: too many requests in progress"
    PROCESS_DIED = (
        "process_died",
        "Charged the reservation: the serving process died, usage never seen",
    )


class AIRequest(models.Model):
    # No index of its own: the composite indexes below start with workspace, and every
    # index is one more write on each AI request.
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        on_delete=models.CASCADE,
        related_name="ai_requests",
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ai_requests",
    )
    # The workspace API token that made the request; null for the browser's session API.
    api_token = models.ForeignKey(
        "api_tokens.ApiToken",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ai_requests",
    )
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=100)
    credential_source = models.CharField(max_length=10, choices=CredentialSource.choices)
    outcome = models.CharField(max_length=24, choices=Outcome.choices)
    error_type = models.CharField(
        max_length=64, blank=True, help_text="The gateway's error type, e.g. llm_key_invalid."
    )
    provider_error_type = models.CharField(
        max_length=64, blank=True, help_text="The provider's own error type, when it answered one."
    )
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_input_tokens = models.PositiveIntegerField(default=0)
    cache_creation_input_tokens = models.PositiveIntegerField(default=0)
    credits_charged = models.BigIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    provider_request_id = models.CharField(max_length=100, blank=True)
    stream = models.BooleanField(default=False)
    # The prices this request was charged at (credits path): the version in force when it
    # began, as ``credits.pricing.ModelPrice.snapshot()``. History is never re-priced.
    prices = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "AI request"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits_charged__gte=0),
                name="ai_gateway_airequest_credits_nonneg",
            ),
            models.CheckConstraint(
                condition=~models.Q(credential_source="byok") | models.Q(credits_charged=0),
                name="ai_gateway_airequest_byok_free",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="ai_req_ws_created_idx"),
            models.Index(
                fields=["workspace", "user", "-created_at"], name="ai_req_ws_user_created_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} via {self.credential_source}: {self.outcome}"

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
        )


class AIUsageDay(models.Model):
    """The AI requests of one UTC day, summed per workspace, user, model and source.

    Derived from ``AIRequest`` by ``ai_gateway.usage_days.ai_usage_days_build`` for closed
    days only, so the usage page sums a few rows per day instead of every request
    (docs/decisions/079). A day's rows are replaced as a whole, never edited one by one.
    """

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    model = models.CharField(max_length=100)
    credential_source = models.CharField(max_length=10, choices=CredentialSource.choices)
    requests = models.PositiveIntegerField()
    succeeded = models.PositiveIntegerField()
    input_tokens = models.BigIntegerField()
    output_tokens = models.BigIntegerField()
    cache_read_input_tokens = models.BigIntegerField()
    cache_creation_input_tokens = models.BigIntegerField()
    credits_charged = models.BigIntegerField()
    # The tokens of requests billed at their model's long-context rates (decision 075).
    long_input_tokens = models.BigIntegerField(default=0)
    long_output_tokens = models.BigIntegerField(default=0)
    long_cache_read_input_tokens = models.BigIntegerField(default=0)
    long_cache_creation_input_tokens = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "AI usage day"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requests__gte=1) & models.Q(succeeded__lte=models.F("requests")),
                name="ai_gateway_aiusageday_counts_valid",
            ),
        ]
        indexes = [
            # One workspace's days for the page. Finding one day across workspaces (a
            # rebuild) uses a BRIN index on day (migration 0005, PostgreSQL): a B-tree there
            # looked cheaper to the planner for the page and made it read every workspace.
            models.Index(fields=["workspace", "day"], name="ai_usage_day_ws_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.day}: {self.requests} via {self.credential_source}"


class AIUsageDaysBuilt(models.Model):
    """One row: every UTC day up to ``through`` is summed into ``AIUsageDay``."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    through = models.DateField()
    built_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "AI usage days built"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id=1), name="ai_gateway_aiusagedaysbuilt_single_row"
            ),
        ]

    def __str__(self) -> str:
        return f"AI usage summed through {self.through}"
