"""Provider adapters, looked up by provider name (``llm_keys.models.Provider``).

Every adapter is a ``RelayAdapter``: a key check (``validate``) and its provider's own API
relayed by operation (``asend``, ``astream``). Anthropic's also keeps the Messages API methods
the gateway was built on (``ProviderAdapter``). Adding a provider is one adapter module, its
key shape in ``providers.keys``, a ``Provider`` choice and its stand-in (docs/decisions/140).
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

_ADAPTERS: dict[str, RelayAdapter] = {
    "anthropic": AnthropicAdapter(),
    "openai": OpenAIAdapter(),
    "gemini": GeminiAdapter(),
}


def get_adapter(provider: str) -> Any:
    """Return the adapter for a provider name."""
    # Typed Any: the gateway also calls Anthropic's ProviderAdapter methods on it.
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
