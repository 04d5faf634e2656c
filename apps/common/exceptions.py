"""Domain errors raised by services and mapped to the JSON error shape in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base for errors a client can act on. Each maps to one HTTP status and a stable code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class ValidationFailed(DomainError):
    """Input failed validation; ``fields`` maps a field path to its messages."""

    status_code = 400
    code = "validation_error"

    def __init__(self, fields: dict[str, list[str]], message: str = "The request has invalid fields.") -> None:
        super().__init__(message, fields=fields)
        self.fields = fields


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """A lifecycle transition that is not legal from the object's current state."""

    code = "invalid_transition"

    def __init__(self, *, subject: str, current_state: str, attempted: str) -> None:
        article = "an" if subject[:1] in "aeiou" else "a"
        super().__init__(
            f"Cannot {attempted} {article} {subject} that is {current_state.replace('_', ' ')}.",
            current_state=current_state,
            attempted=attempted,
        )


class BusinessRuleViolation(DomainError):
    """The request is well-formed but breaks a rule of the domain (422)."""

    status_code = 422
    code = "business_rule"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
