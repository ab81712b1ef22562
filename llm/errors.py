"""Every error the llm core raises to its callers, each with the HTTP status the API should send.

The core knows nothing of HTTP; http_status is a hint so the mapping lives in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llm.types import ErrorKind, ProviderError

if TYPE_CHECKING:
    from llm.charges import Charge
    from llm.route_info import RouteInfo


class GatewayError(Exception):
    http_status = 500
    code = "gateway_error"

    def __init__(self, message: str, *, route: RouteInfo | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.route = route
        # Upstream answers already paid for before this error (structured output's attempts).
        self.charges: tuple[Charge, ...] = ()


class UnknownModelError(GatewayError):
    """Neither a model nor an alias by that name; available lists every name that exists."""

    http_status = 404
    code = "model_not_found"

    def __init__(self, name: str, available: Sequence[str]) -> None:
        super().__init__(f"unknown model or alias {name!r}")
        self.name = name
        self.available = list(available)


class ModelNotAllowedError(GatewayError):
    http_status = 403
    code = "model_not_allowed"


class UnsupportedCapabilityError(GatewayError):
    """The named model cannot do what the request needs (tools, vision, ...)."""

    http_status = 400
    code = "unsupported_capability"


class UnsupportedParameterError(GatewayError):
    """No candidate can honour a request parameter (its rules refuse it): the gateway's own 400,
    instead of forwarding a request the provider would refuse."""

    http_status = 400
    code = "unsupported_parameter"

    def __init__(self, message: str, *, param: str, models: Sequence[str]) -> None:
        super().__init__(message)
        self.param = param
        self.models = list(models)


class NoRouteError(GatewayError):
    """Nothing can serve the request now: providers not configured, or none capable."""

    http_status = 503
    code = "no_route"


class UpstreamRejectedError(GatewayError):
    """A non-retryable upstream answer (400/401/404): no failover, surfaced at once.

    A 400 is the caller's request: 400. A 401/403 or 404 means our key or catalogue is wrong,
    which the caller cannot fix: 502.
    """

    code = "upstream_rejected"

    def __init__(self, error: ProviderError, *, route: RouteInfo | None = None) -> None:
        super().__init__(f"{error.provider} rejected the request: {error.message}", route=route)
        self.error = error
        self.http_status = 400 if error.kind is ErrorKind.BAD_REQUEST else 502


class AllProvidersFailedError(GatewayError):
    """Every candidate failed with retryable errors; route.attempts has each one."""

    http_status = 502
    code = "upstream_unavailable"


class ProvidersBackingOffError(AllProvidersFailedError):
    """No candidate was called: each asked us to wait (Retry-After) or has its circuit open."""

    http_status = 503
    code = "upstream_backing_off"

    def __init__(self, message: str, *, retry_after: float, route: RouteInfo | None) -> None:
        super().__init__(message, route=route)
        self.retry_after = retry_after


class GatewayTimeoutError(GatewayError):
    http_status = 504
    code = "upstream_timeout"

    def __init__(self, message: str, *, last_provider: str | None, route: RouteInfo | None) -> None:
        super().__init__(message, route=route)
        self.last_provider = last_provider


class InvalidSchemaError(GatewayError):
    http_status = 400
    code = "invalid_json_schema"


class StructuredOutputError(GatewayError):
    """The model never produced JSON valid against the schema. The caller still pays for every
    attempt: charges holds each one."""

    http_status = 422
    code = "structured_output_invalid"

    def __init__(
        self,
        message: str,
        *,
        errors: list[str],
        last_text: str,
        charges: tuple[Charge, ...],
        attempts: int,
        route: RouteInfo | None = None,
    ) -> None:
        super().__init__(message, route=route)
        self.errors = errors
        self.last_text = last_text
        self.charges = charges
        self.attempts = attempts

    def details(self) -> dict[str, Any]:
        return {"errors": self.errors, "attempts": self.attempts}
