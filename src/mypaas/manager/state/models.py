"""The state store's tables (SQLAlchemy 2 ORM): desired state, releases, operations, users, teams,
tokens and the audit log."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mypaas.manager.state.sealed import SealedJSON
from mypaas.states import AppState, BackendMode, HostState, OperationStatus, ReleaseStatus


def _state(enum: type[StrEnum]) -> Enum:
    """A state column: the enum value as text in the store (VARCHAR(16), no constraint), a member in code."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Platform-wide key/values (the platform id, schema facts)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AppRow(Base):
    """An app's desired state. ``target_*`` is what should run; ``current_*`` what last rolled out."""

    __tablename__ = "apps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, index=True)
    state: Mapped[AppState] = mapped_column(_state(AppState), default=AppState.RUNNING)
    target_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_generation: Mapped[int] = mapped_column(Integer, default=0)
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    current_generation: Mapped[int] = mapped_column(Integer, default=0)
    operation_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the rollout in flight
    # which backend runs the app: containers on one engine, or services of a Swarm cluster
    backend: Mapped[BackendMode] = mapped_column(
        _state(BackendMode), default=BackendMode.DOCKER, server_default=BackendMode.DOCKER.value
    )
    # a removal (state deleting): whether the app's named volumes go too, whether foreign endpoints are
    # cut and what is left given up on (rm --force), and what keeps it from finishing (None: nothing)
    remove_volumes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    remove_force: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # served over plain HTTP even where a trusted certificate would redirect HTTP to HTTPS
    plain_http: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    blocked: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the team that owns the app (every app has one; apps from before teams are in the default team)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    # the branch whose `git push` deploys the app (None: main, or master)
    deploy_branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, onupdate=time.time)

    releases: Mapped[list[ReleaseRow]] = relationship(
        back_populates="app", cascade="all, delete-orphan", order_by="ReleaseRow.version"
    )
    formation: Mapped[list[FormationRow]] = relationship(cascade="all, delete-orphan")
    domains: Mapped[list[DomainRow]] = relationship(cascade="all, delete-orphan")
    secrets: Mapped[list[SecretRow]] = relationship(cascade="all, delete-orphan")
    certs: Mapped[list[CertRow]] = relationship(cascade="all, delete-orphan")


class ReleaseRow(Base):
    """An immutable, numbered snapshot: the app spec with pinned image ids and the config vars."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(SealedJSON)  # encrypted: it holds compose environment values
    config: Mapped[dict[str, str]] = mapped_column(SealedJSON, default=dict)  # encrypted (sealed.py)
    # service -> "registry/repo@sha256:..", filled once the release's images are in the registry
    images: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ReleaseStatus] = mapped_column(_state(ReleaseStatus), default=ReleaseStatus.PENDING)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)

    app: Mapped[AppRow] = relationship(back_populates="releases")


class SecretRow(Base):
    """One value of an app's secrets and configs, encrypted (manager/vault). Releases refer to values by
    ``digest`` (a keyed digest: equal values, equal digests); ``name`` is "" for a value a deploy brought
    (a compose file's ``file``, ``environment`` or ``content``), else the name it was set under with
    ``mypaas secrets set``, ``current`` for its present value (older ones stay while a release uses them)."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("app_id", "name", "digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    digest: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)  # a Fernet token of the value
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class FormationRow(Base):
    """How many replicas of each service should run (not part of a release, like Heroku's formation)."""

    __tablename__ = "formation"
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    service: Mapped[str] = mapped_column(String(63), primary_key=True)
    replicas: Mapped[int] = mapped_column(Integer, default=1)


class DomainRow(Base):
    __tablename__ = "domains"
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class CertRow(Base):
    """A user's own certificate for one of an app's domains (``certs add``): the PEM chain as given, the
    key encrypted (manager/vault), and what the check found (issuer, expiry)."""

    __tablename__ = "certs"
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    cert_pem: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)  # a Fernet token of the key's PEM
    key_digest: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(Text, default="")
    not_after: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class OperationRow(Base):
    """A piece of work a client can follow: a deploy, a rollback, a restart, a removal."""

    __tablename__ = "operations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[OperationStatus] = mapped_column(_state(OperationStatus), default=OperationStatus.PENDING)
    release: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    log: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class TeamRow(Base):
    """A team: it owns apps; its members have a role in it (owner, deployer, viewer)."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, index=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)

    members: Mapped[list[MemberRow]] = relationship(cascade="all, delete-orphan", back_populates="team")


class UserRow(Base):
    """A person (or a robot) who signs in. ``password`` is an argon2id hash, None until one is set
    (the platform admin made from an old admin token has none). ``admin``: a platform admin."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True, index=True)
    password: Mapped[str | None] = mapped_column(Text, nullable=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[float] = mapped_column(Float, default=time.time)

    memberships: Mapped[list[MemberRow]] = relationship(cascade="all, delete-orphan", back_populates="user")
    tokens: Mapped[list[TokenRow]] = relationship(cascade="all, delete-orphan", back_populates="user")


class MemberRow(Base):
    """A user's role in a team."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | deployer | viewer
    created_at: Mapped[float] = mapped_column(Float, default=time.time)

    team: Mapped[TeamRow] = relationship(back_populates="members")
    user: Mapped[UserRow] = relationship(back_populates="memberships")


class TokenRow(Base):
    """An API token, stored as its SHA-256 only. A token acts for its user: with all of the user's rights
    (``role`` empty: a login, the admin-token file), or within a scope (``team`` and ``role``, optionally
    one ``app``) that never exceeds what the user has. ``role`` "pull": the hosts' pull-only token."""

    __tablename__ = "access_tokens"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="api")  # api | login | file | pull
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="")
    app: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_from: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[UserRow | None] = relationship(back_populates="tokens")
    team: Mapped[TeamRow | None] = relationship()


class AuditRow(Base):
    """One call that changed something, was denied, or a failed login: who, with which token, from where,
    what, on which app or host, and how it ended. Never a secret's value."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, default=time.time, index=True)
    user: Mapped[str] = mapped_column(String(63), default="", index=True)
    token: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    app: Mapped[str] = mapped_column(String(63), default="", index=True)
    host: Mapped[str] = mapped_column(String(253), default="")
    team: Mapped[str] = mapped_column(String(63), default="")
    result: Mapped[str] = mapped_column(String(16))  # ok | denied | failed | error
    status: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")


class HostRow(Base):
    """A machine of the Swarm cluster: how to reach it, its Swarm node, and where adding or removing it is.
    The platform's backend mode itself is the ``Meta`` key ``backend`` ("docker" when absent, or "swarm")."""

    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True, index=True)
    address: Mapped[str] = mapped_column(String(253), unique=True)
    port: Mapped[int] = mapped_column(Integer, default=22)
    user: Mapped[str] = mapped_column(String(64), default="root")
    driver: Mapped[str] = mapped_column(String(32), default="ssh")  # an iaas driver, or "local" (the manager)
    role: Mapped[str] = mapped_column(String(16), default="worker")  # manager | worker
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # once it joined the Swarm
    state: Mapped[HostState] = mapped_column(_state(HostState), default=HostState.ADDING)
    host_key: Mapped[str] = mapped_column(String(128), default="")  # the pinned SSH key, "SHA256:..."
    key_path: Mapped[str | None] = mapped_column(Text, nullable=True)  # the private key MyPaas logs in with
    message: Mapped[str] = mapped_column(Text, default="")  # what went wrong last, if anything
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    # a host made by `host create`: the driver account that made it and the cloud's id of its machine
    account: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    machine_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class DriverAccountRow(Base):
    """A driver account (`mypaas driver add`): an iaas driver type and its options; the secret ones
    (``SECRET_OPTIONS`` of the driver class) encrypted with the platform's key, apart."""

    __tablename__ = "driver_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    type: Mapped[str] = mapped_column(String(64))  # vsphere | libvirt | openstack | a third-party driver
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # non-secret options
    secrets: Mapped[dict[str, Any]] = mapped_column(SealedJSON, default=dict)  # dotted name -> value
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class PreviewSettingsRow(Base):
    """An app's preview apps (`mypaas previews on|off`): whether a deploy with ``--preview BRANCH`` may
    make one, how many may exist at once, and whether they get the app's secrets."""

    __tablename__ = "preview_settings"
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    max_previews: Mapped[int] = mapped_column(Integer, default=3)
    with_secrets: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time)


class PreviewRow(Base):
    """A preview app (``app_id``): the app it previews (``parent_id``) and the git branch it runs."""

    __tablename__ = "previews"
    __table_args__ = (UniqueConstraint("parent_id", "branch"),)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    branch: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class GitSourceRow(Base):
    """Where an app's code comes from (issue 17): its repository (URL, ref, sub-folder), its deploy key
    (the private half and the webhook secret sealed with the platform's key), and its watch: the branch
    whose pushes redeploy, the poll interval (0: webhooks only), the last sha deployed (or that failed),
    and the user the watch acts for. ``team``: the team the key was made for (another team's app of the
    same name never gets it)."""

    __tablename__ = "git_sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    team: Mapped[str] = mapped_column(String(64), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str] = mapped_column(String(255), default="")
    path: Mapped[str] = mapped_column(Text, default="")
    public_key: Mapped[str] = mapped_column(Text, default="")
    secrets: Mapped[dict[str, Any]] = mapped_column(SealedJSON, default=dict)  # private_key, webhook_secret
    watching: Mapped[bool] = mapped_column(Boolean, default=False)
    branch: Mapped[str] = mapped_column(String(255), default="")
    poll_s: Mapped[float] = mapped_column(Float, default=0.0)
    last_sha: Mapped[str] = mapped_column(String(64), default="")
    failed_sha: Mapped[str] = mapped_column(String(64), default="")
    user: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class SshKeyRow(Base):
    """A user's SSH public key (`mypaas user key add`): `git push` over the platform's SSH endpoint signs
    in with it. A key belongs to one user only (its SHA256 fingerprint is unique)."""

    __tablename__ = "ssh_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))  # the key's comment, or the name it was given
    type: Mapped[str] = mapped_column(String(64))  # ssh-ed25519 | ecdsa-sha2-nistp256 | ssh-rsa ...
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # SHA256:<base64>
    public_key: Mapped[str] = mapped_column(Text)  # "TYPE BASE64" (no comment)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)

    user: Mapped[UserRow] = relationship()
