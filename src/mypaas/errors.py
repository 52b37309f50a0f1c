"""The one exception tree of MyPaas; adapters map it to exit codes and HTTP statuses.

MyPaasError            anything MyPaas reports to a user (message, optional field)
├── InvalidSpec        bad input: a name, a key, a value (HTTP 400)
├── NotFound           an unknown app, release, image, operation (HTTP 404)
│   └── UnknownApp     an unknown app, with the close names for "did you mean" (narrowed per caller)
├── Conflict           taken names, ports or domains; an app busy (HTTP 409)
├── Unauthorized       a missing, wrong, expired or revoked token (HTTP 401)
├── Forbidden          a valid caller whose role does not allow the call (HTTP 403)
├── TooManyAttempts    too many failed logins: wait (HTTP 429)
├── NotSupported       a backend or driver cannot do this (HTTP 501)
├── Unavailable        the state store is busy past its wait: try again after ``retry_after`` s (HTTP 503)
└── BackendError       the engine, Caddy or another real part failed (HTTP 502)
    └── BuildFailed    an image build failed (its output went to the build's log)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


class MyPaasError(Exception):
    """Base of every error shown to a user. ``field`` names the input at fault, if any."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidSpec(MyPaasError):
    status = 400


class NotFound(MyPaasError):
    status = 404


def no_service(app: str, service: str, services: Iterable[str]) -> NotFound:
    """The 404 of a mistyped service name, naming the closest service of the app ("did you mean 'web'?")."""
    close = difflib.get_close_matches(service, list(services), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return NotFound(f"app {app} has no service {service!r}{hint}", field="service")


class UnknownApp(NotFound):
    """The 404 of an unknown app: "no app named 'x'; did you mean 'y'?". ``close`` holds the apps whose
    names are close, best first; the API narrows them to the apps its caller sees (``narrowed``), so the
    hint never names another team's app."""

    def __init__(self, name: str, close: Iterable[str] = ()) -> None:
        self.name, self.close = name, tuple(close)
        hint = f"; did you mean {self.close[0]!r}?" if self.close else ""
        super().__init__(f"no app named {name!r}{hint}", field="app")

    @classmethod
    def among(cls, name: str, names: Iterable[str]) -> UnknownApp:
        return cls(name, difflib.get_close_matches(name, list(names), n=5, cutoff=0.6))

    def narrowed(self, keep: Callable[[str], bool]) -> UnknownApp:
        """The same error with only the close names ``keep`` lets through."""
        return UnknownApp(self.name, [n for n in self.close if keep(n)])


class Conflict(MyPaasError):
    status = 409


class Unauthorized(MyPaasError):
    status = 401


class Forbidden(MyPaasError):
    status = 403


class TooManyAttempts(MyPaasError):
    """Too many failed logins from one source or for one user: wait before trying again."""

    status = 429


class NotSupported(MyPaasError):
    status = 501


class Unavailable(MyPaasError):
    """Busy for now, not broken: a write waited past its timeout for another's lock on the state store.
    Nothing was changed; the same call can be made again after ``retry_after`` seconds."""

    status = 503

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class BackendError(MyPaasError):
    status = 502


class BuildFailed(BackendError):
    status = 400  # a Dockerfile that fails to build is the user's input at fault


def error_for_status(status: int) -> type[MyPaasError]:
    """The error a client raises for an HTTP status the API answered (the reverse of ``status``):
    BackendError for a status no user mistake maps to."""
    for kind in _BY_STATUS:
        if kind.status == status:
            return kind
    return BackendError


_BY_STATUS: tuple[type[MyPaasError], ...] = (
    InvalidSpec,
    NotFound,
    Conflict,
    Unauthorized,
    Forbidden,
    TooManyAttempts,
    NotSupported,
    Unavailable,
)


def restated(exc: MyPaasError, message: Callable[[str], str], field: str | None = None) -> MyPaasError:
    """``exc`` said again with more context (``message`` of its own text, ``field`` or its own), as the
    nearest kind of the tree that takes a message and a field. An UnknownApp loses its "did you mean":
    only the API knows which names its caller may see."""
    text = f"no app named {exc.name!r}" if isinstance(exc, UnknownApp) else exc.message
    kind = next(k for k in type(exc).__mro__ if k is MyPaasError or "__init__" not in vars(k))
    made: MyPaasError = kind(message(text), field=exc.field if field is None else field)
    return made
