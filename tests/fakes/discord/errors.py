"""Discord's JSON error answers: ``{"message": ..., "code": ...}`` plus the well-known codes the fake uses."""

from __future__ import annotations

from typing import Any

UNKNOWN_CHANNEL = 10003
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
UNKNOWN_USER = 10013
UNKNOWN_APPLICATION = 10002
UNKNOWN_INTERACTION = 10062
REQUEST_TOO_LARGE = 40005
ALREADY_ACKNOWLEDGED = 40060
MISSING_ACCESS = 50001
CANNOT_EDIT_OTHERS_MESSAGE = 50005
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035

MESSAGES: dict[int, str] = {
    UNKNOWN_APPLICATION: "Unknown Application",
    UNKNOWN_CHANNEL: "Unknown Channel",
    UNKNOWN_MESSAGE: "Unknown Message",
    UNKNOWN_USER: "Unknown User",
    UNKNOWN_WEBHOOK: "Unknown Webhook",
    UNKNOWN_INTERACTION: "Unknown interaction",
    REQUEST_TOO_LARGE: "Request entity too large",
    ALREADY_ACKNOWLEDGED: "Interaction has already been acknowledged.",
    MISSING_ACCESS: "Missing Access",
    CANNOT_EDIT_OTHERS_MESSAGE: "Cannot edit a message authored by another user",
    INVALID_WEBHOOK_TOKEN: "Invalid Webhook Token",
    INVALID_FORM_BODY: "Invalid Form Body",
}

STATUS_MESSAGES: dict[int, str] = {
    400: "400: Bad Request",
    401: "401: Unauthorized",
    403: "403: Forbidden",
    404: "404: Not Found",
    405: "405: Method Not Allowed",
    413: "Request entity too large",
    429: "You are being rate limited.",
    500: "500: Internal Server Error",
    502: "502: Bad Gateway",
    503: "503: Service Unavailable",
}


def error_body(status: int, code: int | None = None, message: str | None = None) -> dict[str, Any]:
    """The body Discord sends for an error: the code's message if known, else the generic status text."""
    if message is None:
        message = MESSAGES.get(code or 0) or STATUS_MESSAGES.get(status, f"{status}: Error")
    return {"message": message, "code": code or 0}


class ApiError(Exception):
    """Raised inside a route handler to answer with a Discord error body."""

    def __init__(
        self, status: int, code: int = 0, message: str | None = None, *, errors: dict[str, Any] | None = None
    ) -> None:
        self.status = status
        self.body = error_body(status, code, message)
        if errors:
            self.body["errors"] = errors
        super().__init__(f"{status} {self.body}")
