"""The provider error tree. Every error carries a ``user_message`` a person can act on and a ``retryable`` flag.

Upstream bodies and status codes go into ``detail`` (English, for the logs); they never reach ``user_message``, a
``providers.messages.Message`` the bot renders in the reader's language.
"""

from __future__ import annotations

from typing import ClassVar

from providers.messages import Message, msg


class ProviderError(Exception):
    """Base of every error an adapter raises."""

    default_user_message: ClassVar[Message] = msg("The image service had a problem with this request.")
    retryable = False

    def __init__(
        self,
        detail: str = "",
        *,
        provider: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        user_message: Message | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(detail or self.default_user_message)
        self.detail = detail
        self.provider = provider
        self.status = status
        self.code = code
        self.request_id = request_id
        self.user_message = user_message or self.default_user_message
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        parts = [self.provider or "provider", type(self).__name__]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        text = " ".join(parts)
        return f"{text}: {self.detail}" if self.detail else text


class AuthError(ProviderError):
    """The API key is missing, wrong, revoked or not activated. The operator must fix the configuration."""

    default_user_message = msg(
        "This model is not available right now: the bot's access to the service was refused. "
        "An operator has been told; try another model."
    )


class InsufficientFundsError(ProviderError):
    """The operator's account with the provider has no balance left."""

    default_user_message = msg(
        "This model is not available right now: the bot's account with the service has run out of funds. "
        "Try another model, or try again later."
    )


class InvalidRequestError(ProviderError):
    """The provider rejected the request itself; sending it again unchanged will fail again."""

    default_user_message = msg("The service rejected these settings. Change the prompt or options and try again.")


class InputImageError(InvalidRequestError):
    """An input image was too large, in a format the service does not take, or could not be decoded."""

    default_user_message = msg("The service could not use the image you gave it. Try a smaller PNG or JPEG image.")


class ModeratedError(ProviderError):
    """The prompt or an input image was refused by the provider's content rules."""

    default_user_message = msg(
        "The service refused this prompt or image under its content rules. Change the prompt or image and try again."
    )


class RateLimitedError(ProviderError):
    """Too many requests or too many running jobs. Safe to try again after ``retry_after_s``."""

    default_user_message = msg("The service is busy right now. Your job will be tried again shortly.")
    retryable = True

    def __init__(self, detail: str = "", *, retry_after_s: float | None = None, **kwargs: object) -> None:
        super().__init__(detail, **kwargs)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class UnavailableError(ProviderError):
    """The provider could not be reached or answered with a server error. Safe to retry for polls."""

    default_user_message = msg("The service is having trouble right now. Try again in a few minutes.")
    retryable = True

    def __init__(self, detail: str = "", *, retry_after_s: float | None = None, **kwargs: object) -> None:
        super().__init__(detail, **kwargs)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class AmbiguousSubmitError(ProviderError):
    """A submission whose outcome is unknown (timeout, reset after sending, 5xx, unreadable success body).

    The job may exist upstream and be billed there, so it is never submitted again automatically.
    """

    default_user_message = msg(
        "The service did not confirm the job (it timed out or failed mid-request). It may still have run "
        "and been billed upstream, so it was not sent again automatically. Try again if you want the result."
    )
    retryable = False


class NotFoundError(ProviderError):
    """The upstream job id is unknown (expired, deleted, or never created)."""

    default_user_message = msg("The service no longer knows this job; it may have expired.")


class ProtocolError(ProviderError):
    """The provider answered with something this adapter cannot read (HTML, malformed JSON, missing fields)."""

    default_user_message = msg("The service sent an answer the bot could not read. Try again in a few minutes.")
    retryable = True
