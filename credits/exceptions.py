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
