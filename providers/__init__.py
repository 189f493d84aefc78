"""Provider adapters, looked up by provider name (``llm_keys.models.Provider``)."""

from .anthropic import AnthropicAdapter
from .base import (
    CheckOutcome,
    CheckResult,
    KeyRejectedError,
    MessageResult,
    MessageStream,
    ProviderAdapter,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderUnavailableError,
    StreamSummary,
    Usage,
)

_ADAPTERS: dict[str, ProviderAdapter] = {"anthropic": AnthropicAdapter()}


def get_adapter(provider: str) -> ProviderAdapter:
    """Return the adapter for a provider name."""
    try:
        return _ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"No adapter for provider '{provider}'.") from None


__all__ = [
    "CheckOutcome",
    "CheckResult",
    "KeyRejectedError",
    "MessageResult",
    "MessageStream",
    "ProviderAdapter",
    "ProviderError",
    "ProviderRateLimitedError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "StreamSummary",
    "Usage",
    "get_adapter",
]
