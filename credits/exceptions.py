class CreditsError(Exception):
    """A credits operation was refused."""


class InsufficientCreditsError(CreditsError):
    """The workspace's balance cannot cover the amount asked for."""

    def __init__(self, *, balance: int, needed: int):
        super().__init__(
            f"Not enough AI credits: this request needs up to {needed:,} credits and the "
            f"workspace has {balance:,}. Ask a workspace admin to add credits or set an "
            "Anthropic key."
        )
        self.balance = balance
        self.needed = needed


class IdempotencyConflictError(CreditsError):
    """An idempotency key was reused for a different operation or amount."""


class HoldAlreadyClosedError(CreditsError):
    """The hold was already settled or released in a different way."""


class MemberCreditLimitError(CreditsError):
    """The request would take the member past their monthly credit limit."""

    def __init__(self, *, limit: int, used: int, needed: int, source: str = "member"):
        whose = "the workspace's default limit" if source == "workspace default" else "your limit"
        super().__init__(
            f"Monthly AI credits limit reached: {whose} is {limit:,} credits a month, "
            f"{used:,} are used or held this month, and this request can cost up to "
            f"{needed:,}. A workspace admin can change member limits in Workspace Settings → "
            "Members; the limit starts again on the first day of next month (UTC)."
        )
        self.limit = limit
        self.used = used
        self.needed = needed


class ConcurrencyLimitError(CreditsError):
    """The workspace already has as many credit-paid requests in progress as it may."""

    def __init__(self, *, limit: int):
        super().__init__(
            f"Too many AI requests paid with credits are in progress for this workspace "
            f"(at most {limit:,} at once, AI_CREDITS_MAX_CONCURRENT_REQUESTS). Retry when one "
            "has finished."
        )
        self.limit = limit


class ReservationExpiredError(CreditsError):
    """The sweep already charged this reservation whole: its lease had expired (its process
    stopped renewing it). The request must not be charged or recorded again."""

    def __init__(self, *, hold_id: int, charged: int):
        super().__init__(
            f"Hold {hold_id} was charged {charged:,} credits by the sweep: its lease expired."
        )
        self.hold_id = hold_id
        self.charged = charged
