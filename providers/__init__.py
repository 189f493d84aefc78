"""Provider adapters, looked up by provider name (``llm_keys.models.Provider``).

Every adapter is a ``RelayAdapter``: a key check (``validate``) and its provider's own API
relayed by operation (``asend``, ``astream``). Anthropic's also keeps the Messages API methods
the gateway was built on (``ProviderAdapter``). Adding a provider is one adapter module, its
key shape in ``providers.keys``, a ``Provider`` choice and its stand-in (docs/decisions/140).
"""

import threading
from importlib import import_module
from typing import Any

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

# Each adapter's module imports its provider's SDK: about 2.5 s of imports in all, which a
# management command that calls no provider (create_api_token, grant_credits) need not pay.
# An adapter is built on first use; the web application builds them all as it starts
# (config/asgi.py, config/wsgi.py), so no request pays for it.
_ADAPTER_CLASSES = {
    "anthropic": ("providers.anthropic", "AnthropicAdapter"),
    "openai": ("providers.openai", "OpenAIAdapter"),
    "gemini": ("providers.gemini", "GeminiAdapter"),
}
_ADAPTERS: dict[str, RelayAdapter] = {}
_building = threading.Lock()


def get_adapter(provider: str) -> Any:
    """Return the adapter for a provider name."""
    # Typed Any: the gateway also calls Anthropic's ProviderAdapter methods on it.
    try:
        return _ADAPTERS[provider]
    except KeyError:
        pass
    try:
        module, name = _ADAPTER_CLASSES[provider]
    except KeyError:
        raise ValueError(f"No adapter for provider '{provider}'.") from None
    with _building:
        if provider not in _ADAPTERS:
            _ADAPTERS[provider] = getattr(import_module(module), name)()
    return _ADAPTERS[provider]


def load_adapters() -> None:
    """Build every provider's adapter now (a server process, before its first request)."""
    for provider in _ADAPTER_CLASSES:
        get_adapter(provider)


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
    "load_adapters",
]
