"""Errors that carry their own HTTP status and client-facing text.

Services raise these; REST views turn them into `{"error": text}` with `status`, socket
handlers into `{"ok": false, "error": text}` acknowledgements. Anything else that escapes
is a bug and becomes a generic 500 (or a generic socket error) with the details logged.
"""


class ChilloutError(Exception):
    status = 400
    code = "invalid_input"  # a fixed reason code for metrics and logs, never free text

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ChilloutError):
    status = 400


class Forbidden(ChilloutError):
    status = 403
    code = "forbidden"


class NotFound(ChilloutError):
    status = 404
    code = "not_found"


class PayloadTooLarge(ChilloutError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(ChilloutError):
    status = 415
    code = "unsupported_type"


class RateLimited(ChilloutError):
    status = 429
    code = "rate_limited"


class DatabaseUnavailable(ChilloutError):
    status = 503
    code = "database_unavailable"
