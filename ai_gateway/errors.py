"""The gateway's errors: each carries an error type, an HTTP status, a usage-row outcome and
a message a user can act on. The HTTP API renders them as
``{"error": {"type": error_type, "message": message}}`` with ``http_status``.

``permanent``: retrying the same request cannot succeed (a bad token, no credits, an invalid
key, a server misconfiguration); the answer says so with ``x-should-retry: false``, which the
official SDKs and Claude Code obey before their status rules (SPEC §17)."""

from __future__ import annotations


class GatewayError(Exception):
    """An AI request could not be served."""

    error_type = "api_error"
    http_status = 502
    outcome = "provider_error"
    permanent = False

    def __init__(
        self,
        message: str,
        *,
        provider_error_type: str = "",
        request_id: str = "",
        retry_headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.provider_error_type = provider_error_type
        self.request_id = request_id or ""
        # The provider's retry-after / x-should-retry, passed on as it sent them.
        self.retry_headers = retry_headers or {}


class BadRequestError(GatewayError):
    """The request itself is malformed or asks for something not offered; nothing was charged."""

    error_type = "invalid_request_error"
    http_status = 400
    outcome = "bad_request"
    permanent = True


class LLMKeyInvalidError(GatewayError):
    """The workspace's own key is invalid; AI features stop until it is fixed (no fallback)."""

    error_type = "llm_key_invalid"
    http_status = 409
    outcome = "key_invalid"
    permanent = True


class LLMKeyRejectedError(LLMKeyInvalidError):
    """The provider refused the workspace's key during this request; it is now marked invalid."""

    outcome = "key_rejected"


class LLMKeyUnreadableError(GatewayError):
    """The workspace's stored key cannot be decrypted with this server's key ring."""

    error_type = "llm_key_unreadable"
    http_status = 503
    outcome = "key_unreadable"
    permanent = True


class CreditsRefusedError(GatewayError):
    """The workspace's AI credits do not cover the most this request can cost."""

    error_type = "insufficient_credits"
    http_status = 402
    outcome = "insufficient_credits"
    permanent = True


class MemberLimitRefusedError(GatewayError):
    """The member's monthly credit limit does not cover the most this request can cost."""

    error_type = "member_credit_limit"
    http_status = 402
    outcome = "insufficient_credits"
    permanent = True


class ConcurrencyLimitedError(GatewayError):
    """The workspace has as many credit-paid requests in progress as it may; retry soon."""

    error_type = "rate_limit_error"
    http_status = 429
    outcome = "rate_limited"
    retry_after = 2


class StreamTimedOutError(GatewayError):
    """The request ran for AI_STREAM_MAX_SECONDS and was stopped."""

    error_type = "timeout_error"
    http_status = 504
    outcome = "timed_out"


class PlatformNotConfiguredError(GatewayError):
    """This server has no platform provider key, so AI credits cannot be used."""

    error_type = "platform_not_configured"
    http_status = 503
    outcome = "not_configured"
    permanent = True


class ProviderFailedError(GatewayError):
    """The provider answered with an error or could not be reached; nothing was charged."""

    outcome = "provider_error"

    def __init__(self, message: str, *, error_type: str, http_status: int, **kwargs):
        super().__init__(message, **kwargs)
        self.error_type = error_type
        self.http_status = http_status

    @property
    def permanent(self) -> bool:
        # The platform's own key refused: only an operator can fix it. Any other provider
        # error carries the provider's own retry advice instead.
        return self.error_type == "platform_credentials_rejected"


class DatabaseUnavailableError(GatewayError):
    """The service's own database cannot be reached; nothing was sent or charged."""

    error_type = "service_unavailable"
    http_status = 503
    outcome = "not_configured"


class RefusedError(GatewayError):
    """The API refused the caller before any AI request began (authentication, access,
    CSRF, an unreadable body); no usage row is written for it."""

    outcome = "bad_request"

    def __init__(self, message: str, *, error_type: str, http_status: int):
        super().__init__(message)
        self.error_type = error_type
        self.http_status = http_status

    @property
    def permanent(self) -> bool:
        # 408 and 429 may pass with time; any other refusal of the caller will not.
        return 400 <= self.http_status < 500 and self.http_status not in (408, 429)
