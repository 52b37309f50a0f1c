"""Request bodies of the REST API (pydantic); responses are plain JSON objects."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeployBody(_Body):
    """One of ``image``, ``compose_files`` (a compose project), ``compose`` (one compose text) or
    ``dockerfile`` (with an uploaded build context named ``app``)."""

    image: str | None = Field(None, description="an image reference the engine has")
    port: int | None = Field(None, ge=1, le=65535, description="the HTTP port to route (image or Dockerfile)")
    compose: str | None = Field(None, description="a Compose file's text")
    env_files: dict[str, str] = Field(default_factory=dict, description="env_file contents by path, and .env")
    compose_files: list[str] = Field(
        default_factory=list,
        description="a compose project: its files in `-f` order, merged as docker compose merges them "
        "(names relative to the project folder, the first file's folder)",
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="every file of the project read by name: compose files, included and extended files, "
        "env files (.env included)",
    )
    variables: dict[str, str] = Field(
        default_factory=dict, description="the user's shell variables the files use (they win over .env)"
    )
    env_file: list[str] | None = Field(
        None, description="`--env-file`: the project's env files, by name (default: .env when sent)"
    )
    profiles: list[str] | None = Field(
        None, description="`--profile`: the active profiles (default: COMPOSE_PROFILES)"
    )
    dockerfile: str | None = Field(
        None, description="deploy the uploaded folder 'app' built with this Dockerfile"
    )
    source: bool = Field(False, description="deploy the uploaded folder 'app', detecting its language")
    description: str = ""
    preview: str | None = Field(
        None, description="a git branch: deploy the preview app of this app for it (previews must be on)"
    )
    secret_values: dict[str, str] = Field(
        default_factory=dict,
        description="base64 values of the compose file's secrets and configs whose value the CLI read "
        "(file, environment), by secrets.NAME / configs.NAME",
    )


class ScaleBody(_Body):
    replicas: dict[str, int] = Field(description="service name -> number of replicas")


class ConfigBody(_Body):
    set: dict[str, str] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)


class RollbackBody(_Body):
    release: int | None = Field(
        None, ge=1, le=2**31 - 1, description="the version to go back to; default: the previous one"
    )


class DomainBody(_Body):
    domain: str


class HttpsBody(_Body):
    redirect: bool = Field(description="HTTP to HTTPS for the app's domains with a trusted certificate")


class MirrorBody(_Body):
    upstream: str = Field(
        "https://registry-1.docker.io", description="the registry to mirror (default: Docker Hub)"
    )


class SecretBody(_Body):
    value: str = Field(description="the secret's value, base64-encoded (it is never shown back)")


class PreviewsBody(_Body):
    enabled: bool = Field(description="whether deploys with `preview` may make preview apps of the app")
    limit: int | None = Field(
        None, ge=1, le=100, description="how many preview apps may exist at once (default 3; unset: kept)"
    )
    with_secrets: bool | None = Field(
        None, description="whether previews get the app's secrets (default no; unset: kept)"
    )
