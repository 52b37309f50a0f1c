"""The options of an ``openstack`` driver account, checked before the SDK is touched: a clouds.yaml
entry's auth (a password login scoped to a project, or an application credential), the tenant network,
an optional floating IP network, the default flavor and image, the key pair and security group names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mypaas.errors import InvalidSpec

OPTIONS: Mapping[str, str] = {
    "cloud": "the clouds.yaml entry's name (`driver add --cloud NAME`)",
    "cloud_config": "that clouds.yaml entry (auth, auth_type, region_name); the options below override it",
    "auth_url": "Keystone's URL, as in clouds.yaml (https://keystone.example.com:5000/v3)",
    "username": "the user to log in as (a password login)",
    "password": "that user's password (stored encrypted)",
    "project_name": "the project (tenant) the machines go in",
    "user_domain_name": "the user's domain (default: Default)",
    "project_domain_name": "the project's domain (default: Default)",
    "region_name": "the region (default: the catalog's only one)",
    "application_credential_id": "an application credential's id, instead of username/password",
    "application_credential_secret": "that application credential's secret (stored encrypted)",
    "network": "the tenant network the machines join (name or id)",
    "floating_network": "an external network: give each machine a floating IP from it (optional)",
    "flavor": "the default size (a flavor name or id)",
    "image": "the default image (a Glance image name or id)",
    "key_name": "the key pair made from the platform's SSH key (default: mypaas-ACCOUNT)",
    "security_group": "the security group made for the machines (default: mypaas-ACCOUNT)",
    "manager_cidr": "where the manager reaches the machines from (CIDR, e.g. 203.0.113.7/32): Swarm's "
    "ports are opened to it too (without it, only to the security group's members)",
    "ssh_timeout": "seconds to wait for SSH once a machine is ACTIVE (default: 300)",
}
SECRET_OPTIONS: tuple[str, ...] = (
    "password",
    "application_credential_secret",
    "cloud_config.auth.password",
    "cloud_config.auth.application_credential_secret",
)
# the auth keys a flat option may set (and a clouds.yaml auth section may hold, with their *_id twins)
AUTH_OPTIONS = (
    "auth_url",
    "username",
    "password",
    "project_name",
    "user_domain_name",
    "project_domain_name",
    "application_credential_id",
    "application_credential_secret",
)
AUTH_KEYS = (
    *AUTH_OPTIONS,
    "user_id",
    "project_id",
    "user_domain_id",
    "project_domain_id",
    "application_credential_name",
)
AUTH_TYPES = {
    "password": "password",
    "v3password": "password",
    "v3applicationcredential": "v3applicationcredential",
    "applicationcredential": "v3applicationcredential",
}
PLACEMENT = ("network", "floating_network", "flavor", "image", "key_name", "security_group")


@dataclass(frozen=True)
class AccountOptions:
    """A driver account's options, checked: the keystoneauth ``auth`` section (a password login scoped
    to a project, or an application credential) and its type, the region, and where machines go."""

    auth: Mapping[str, str]
    auth_type: str
    network: str
    region_name: str | None = None
    floating_network: str | None = None
    flavor: str | None = None
    image: str | None = None
    key_name: str | None = None
    security_group: str | None = None
    manager_cidr: str | None = None
    ssh_timeout: float = 300.0
    api_timeout: float = 30.0

    @property
    def auth_url(self) -> str:
        return self.auth["auth_url"]

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> AccountOptions:
        """From a clouds.yaml entry (``cloud_config``) and flat options, which override it."""
        unknown = sorted(set(options) - set(OPTIONS) - {"api_timeout"})
        if unknown:
            known = ", ".join(OPTIONS)
            raise InvalidSpec(f"unknown openstack option {unknown[0]!r}; options: {known}", field=unknown[0])
        given = {k: v for k, v in options.items() if v not in (None, "")}
        entry = given.get("cloud_config", {})
        if not isinstance(entry, Mapping) or not isinstance(entry.get("auth", {}), Mapping):
            raise InvalidSpec(
                "cloud_config is not a clouds.yaml entry (a mapping with auth:)", field="cloud_config"
            )
        auth = {
            k: str(v)
            for k, v in dict(entry.get("auth") or {}).items()
            if k in AUTH_KEYS and v not in (None, "")
        }
        auth |= {k: str(given[k]) for k in AUTH_OPTIONS if k in given}
        kind = str(
            entry.get("auth_type") or ("v3applicationcredential" if _app_credential(auth) else "password")
        )
        if kind not in AUTH_TYPES:
            raise InvalidSpec(
                f"auth_type {kind!r} is not supported; use {', '.join(AUTH_TYPES)}", field="auth_type"
            )
        if "network" not in given:
            raise InvalidSpec(
                "the openstack driver needs the option network (the tenant network)", field="network"
            )
        region = given.get("region_name") or entry.get("region_name")
        parsed = cls(
            auth=auth,
            auth_type=AUTH_TYPES[kind],
            region_name=str(region) if region else None,
            **{k: str(given[k]) for k in PLACEMENT if k in given},
            manager_cidr=_cidr(given["manager_cidr"]) if "manager_cidr" in given else None,
            ssh_timeout=_seconds(given.get("ssh_timeout", 300), "ssh_timeout"),
            api_timeout=_seconds(given.get("api_timeout", 30), "api_timeout"),
        )
        parsed._check()
        return parsed

    def _check(self) -> None:
        url = self.auth.get("auth_url", "")
        if not url:
            raise InvalidSpec("the openstack driver needs auth_url (Keystone's URL)", field="auth_url")
        if not url.startswith(("http://", "https://")):
            raise InvalidSpec(f"auth_url {url!r} is not an http(s) URL", field="auth_url")
        if self.auth_type == "v3applicationcredential":
            if not self.auth.get("application_credential_secret"):
                raise InvalidSpec(
                    "an application credential needs its secret", field="application_credential_secret"
                )
            return
        needs = (("username", "user_id"), ("password",), ("project_name", "project_id"))
        for names in needs:
            if not any(self.auth.get(n) for n in names):
                raise InvalidSpec(
                    f"a password login needs {names[0]} (or give an application credential)", field=names[0]
                )

    def keystone_auth(self) -> dict[str, str]:
        """The keystoneauth plugin's arguments (a password login's domains default to Default)."""
        if self.auth_type == "password":
            defaults = {"user_domain_name": "Default", "project_domain_name": "Default"}
            if "user_domain_id" in self.auth:
                defaults.pop("user_domain_name")
            if "project_domain_id" in self.auth:
                defaults.pop("project_domain_name")
            return {**defaults, **self.auth}
        return dict(self.auth)


def _app_credential(auth: Mapping[str, str]) -> bool:
    return bool(auth.get("application_credential_id") or auth.get("application_credential_name"))


def _seconds(value: Any, field: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise InvalidSpec(f"{field} {value!r} is not a number of seconds (1-3600)", field=field)
    return seconds


def _cidr(value: Any) -> str:
    """An IPv4 network in CIDR form (a bare address is one host: /32)."""
    import ipaddress

    try:
        network = ipaddress.IPv4Network(str(value).strip(), strict=False)
    except ValueError:
        raise InvalidSpec(
            f"manager_cidr {value!r} is not an IPv4 address or network (203.0.113.7/32)", field="manager_cidr"
        ) from None
    return str(network)
