"""The API client's calls about users, teams, tokens and logging in (a part of ApiClient, kept apart so
that client.py stays small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="")


class IdentityCalls:
    """Mixed into ApiClient, which gives the plumbing (``_dict``, ``_list``)."""

    if TYPE_CHECKING:

        def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...

        def _list(self, path: str, **kwargs: Any) -> list[Any]: ...

    # -- logging in -----------------------------------------------------------------------------

    def login(
        self, user: str, password: str, *, name: str = "", expires: str | None = None
    ) -> dict[str, Any]:
        """A login token for ``user`` (its secret in ``token``)."""
        body = {"user": user, "password": password, "name": name, "expires": expires}
        return self._dict("POST", "/api/v1/login", json=body)

    def whoami(self) -> dict[str, Any]:
        return self._dict("GET", "/api/v1/whoami")

    def logout(self) -> dict[str, Any]:
        return self._dict("POST", "/api/v1/logout")

    # -- users and teams ------------------------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/users")

    def add_user(self, name: str, password: str | None, *, admin: bool = False) -> dict[str, Any]:
        return self._dict("POST", "/api/v1/users", json={"name": name, "password": password, "admin": admin})

    def remove_user(self, name: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/users/{_seg(name)}")

    def set_password(self, name: str, password: str) -> dict[str, Any]:
        return self._dict("PUT", f"/api/v1/users/{_seg(name)}/password", json={"password": password})

    def teams(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/teams")

    def add_team(self, name: str, owner: str | None = None) -> dict[str, Any]:
        return self._dict("POST", "/api/v1/teams", json={"name": name, "owner": owner})

    def remove_team(self, name: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/teams/{_seg(name)}")

    def add_member(self, team: str, user: str, role: str) -> dict[str, Any]:
        path = f"/api/v1/teams/{_seg(team)}/members/{_seg(user)}"
        return self._dict("PUT", path, json={"role": role})

    def remove_member(self, team: str, user: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/teams/{_seg(team)}/members/{_seg(user)}")

    # -- tokens ---------------------------------------------------------------------------------

    def tokens(self, user: str | None = None, *, everyone: bool = False) -> list[dict[str, Any]]:
        params: dict[str, str] = {"user": user} if user else {}
        if everyone:
            params["all"] = "true"
        return self._list("/api/v1/tokens", params=params)

    def create_token(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a token (name, team, role; user, app, expires): its secret is in ``token``, this once."""
        return self._dict("POST", "/api/v1/tokens", json=body)

    def revoke_token(self, ref: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/tokens/{_seg(ref)}")

    # -- SSH keys and git remotes ---------------------------------------------------------------

    def ssh_keys(self, user: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/users/{_seg(user)}/keys")

    def add_ssh_key(self, user: str, key: str, name: str = "") -> dict[str, Any]:
        return self._dict("POST", f"/api/v1/users/{_seg(user)}/keys", json={"key": key, "name": name})

    def remove_ssh_key(self, user: str, fingerprint: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/users/{_seg(user)}/keys/{quote(fingerprint, safe='/')}")

    def git_remote(self, app: str) -> dict[str, Any]:
        return self._dict("GET", f"/api/v1/apps/{_seg(app)}/git")

    def set_git_branch(self, app: str, branch: str) -> dict[str, Any]:
        return self._dict("PUT", f"/api/v1/apps/{_seg(app)}/git", json={"branch": branch})
