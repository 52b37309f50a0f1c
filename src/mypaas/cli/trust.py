"""Trust on first use of the platform CA at `mypaas login https://...`: the CA is fetched (unverified:
what is checked is its fingerprint, computed here), shown, and trusted when the user says so or it
matches ``--fingerprint``; the same CA as the last login's is trusted again without asking."""

from __future__ import annotations

import sys

import typer

from mypaas.cli.output import fail
from mypaas.cli.pinning import CA_PATH, fingerprint, normalize, pinned_ca


def fetch_ca(url: str) -> str | None:
    """The platform CA (PEM) the API at ``url`` offers; None when it offers none (another server, or
    one with a certificate from a public CA: then the system's CAs verify it)."""
    import httpx

    try:
        response = httpx.get(url + CA_PATH, verify=False, timeout=10.0, trust_env=False)  # noqa: S501
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    pem = body.get("ca") if isinstance(body, dict) else None
    if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
        return None
    try:
        fingerprint(pem)
    except ValueError:
        return None
    return pem


def platform_ca(url: str, given: str | None) -> str:
    """The CA to pin for ``url`` ("" for http:// or an API without a platform CA); exits with one line
    when it does not match ``given`` or the user does not trust it."""
    wanted = normalize(given) if given else None
    if not url.lower().startswith("https://"):
        if wanted:
            fail(f"--fingerprint is for an https:// API; {url} is plain http")
        return ""
    pem = fetch_ca(url)
    if pem is None:
        if wanted:
            fail(f"{url} offers no platform CA to check --fingerprint against")
        return ""
    found = fingerprint(pem)
    if wanted is not None:
        if wanted != found:
            fail(f"refused: the platform CA of {url} is {found}, not {wanted} (--fingerprint)")
        return pem
    before = pinned_ca(url)
    if before and fingerprint(before) == found:
        return pem
    seen = "CHANGED since your last login" if before else "new"
    if not sys.stdin.isatty():
        fail(
            f"the platform CA of {url} is {seen}: its fingerprint is {found}; check it (`mypaas status`"
            f" on the manager shows it), then pass --fingerprint {found}"
        )
    print(f"{url}: the platform CA is {seen}; its fingerprint is {found}", file=sys.stderr)
    print("(`mypaas status` on the manager shows the one to expect)", file=sys.stderr)
    if not typer.confirm("Trust this CA?", default=False):
        fail("not trusted: not logged in")
    return pem
