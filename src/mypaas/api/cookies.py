"""The dashboard's session cookie and its CSRF check, shared by the routes' caller check (deps.py), the
body limits' early token check (limits.py) and the sign-in routes (session.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

from mypaas.errors import Forbidden

COOKIE = "mypaas_session"
CSRF_COOKIE = "mypaas_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_of(token: str) -> str:
    """The CSRF value of a session: derived from its (secret, HttpOnly) token."""
    return hashlib.sha256(b"mypaas-csrf\0" + token.encode()).hexdigest()[:40]


def cookie_value(cookie_header: str, name: str) -> str | None:
    try:
        jar = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def authorization_of(headers: Mapping[str, str], method: str) -> str | None:
    """The ``Authorization`` a request carries: its own header, else the session cookie's token — for a
    method that changes something only with the matching ``X-CSRF-Token`` (Forbidden without it)."""
    given = headers.get("authorization")
    if given:
        return given
    token = cookie_value(headers.get("cookie", ""), COOKIE)
    if token is None:
        return None
    if method.upper() not in SAFE_METHODS and not hmac.compare_digest(
        headers.get(CSRF_HEADER, "").encode(), csrf_of(token).encode()
    ):
        raise Forbidden(
            "a signed-in session's change needs the X-CSRF-Token header (reload the page)", field=CSRF_HEADER
        )
    return f"Bearer {token}"
