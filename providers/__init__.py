"""Provider adapters, looked up by provider name (``llm_keys.models.Provider``).

Every adapter is a ``KeyValidator``; Anthropic's also speaks the Messages API the gateway
was built on (``ProviderAdapter``), and OpenAI's and Gemini's relay their own APIs by
operation (``RelayAdapter``).
"""

from typing import Any

from .anthropic import AnthropicAdapter
from .base import (
    CheckOutcome,
    CheckResult,
    KeyRejectedError,
    KeyValidator,
    MessageResult,
    MessageStream,
    ProviderAdapter,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRequestError,
    ProviderUnavailableError,
    RelayAdapter,
    RelayRequest,
    StreamSummary,
    Usage,
)
from .gemini import GeminiAdapter
from .openai import OpenAIAdapter

_ADAPTERS: dict[str, Any] = {
    "anthropic": AnthropicAdapter(),
    "openai": OpenAIAdapter(),
    "gemini": GeminiAdapter(),
}


def get_adapter(provider: str) -> Any:
    """Return the adapter for a provider name."""
    try:
        return _ADAPTERS[provider]
    except KeyError:
        raise ValueError(f"No adapter for provider '{provider}'.") from None


__all__ = [
    "CheckOutcome",
    "CheckResult",
    "KeyRejectedError",
    "KeyValidator",
    "MessageResult",
    "MessageStream",
    "ProviderAdapter",
    "ProviderError",
    "ProviderRateLimitedError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "RelayAdapter",
    "RelayRequest",
    "StreamSummary",
    "Usage",
    "get_adapter",
]
