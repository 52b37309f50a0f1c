"""What a deploy of a compose project must send, found by reading it as the server will: every file read
(compose files, included and extended files, env files), the build contexts to upload, and the names of the
variables the files refer to (the CLI sends the shell's values of those, and only those)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mypaas.errors import InvalidSpec
from mypaas.spec.envfile import parse_env_file
from mypaas.spec.environment import EnvFile, env_file_entries
from mypaas.spec.merge import as_key_values
from mypaas.spec.project import ProjectSource, load_project


@dataclass
class Discovery:
    files: dict[str, str]  # name (relative to the project folder) -> text
    contexts: list[str] = field(default_factory=list)  # build contexts, as the services name them
    variables: set[str] = field(default_factory=set)  # names of variables the files refer to
    # the secrets and configs whose value the CLI sends ("secrets.NAME" -> definition: a file, a variable)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)  # the project's variables (shell over env files)
    binds: bool = False  # a service mounts a relative path: the project's own files go with the deploy


def discover(source: ProjectSource) -> Discovery:
    """Read the project through ``source.read``; raise InvalidSpec as the server would for a file that is
    missing or does not parse (a service key's own errors are left to the server)."""
    read = source.read or source.files.get
    project = load_project(replace(source, read=read))
    found = Discovery(dict(project.files), variables=set(project.used))
    services = project.model.get("services")
    for name, body in (services if isinstance(services, dict) else {}).items():
        if isinstance(body, dict):
            _service(f"services.{name}", body, found, project.variables, read)
    found.values = dict(project.variables)
    for key in ("secrets", "configs"):
        declared = project.model.get(key)
        for name, body in (declared if isinstance(declared, dict) else {}).items():
            if not isinstance(body, dict) or body.get("external"):
                continue
            if isinstance(body.get("environment"), str):
                found.variables.add(body["environment"])
            if isinstance(body.get("environment"), str) or isinstance(body.get("file"), str):
                found.sources[f"{key}.{name}"] = body
    return found


def _service(
    where: str, body: dict[str, Any], found: Discovery, variables: dict[str, str], read: Any
) -> None:
    found.binds = found.binds or any(_relative_bind(item) for item in _list(body.get("volumes")))
    environment = body.get("environment")
    found.variables.update(key for key, value in as_key_values(environment).items() if value is None)
    build = body.get("build")
    if isinstance(build, str | dict):
        build = {"context": build} if isinstance(build, str) else build
        context = build.get("context", ".")
        if isinstance(context, str) and context not in found.contexts:
            found.contexts.append(context)
        found.variables.update(
            key for key, value in as_key_values(build.get("args")).items() if value is None
        )
    for path in _label_files(body.get("label_file")):  # sent as env files are, read alike
        _env_file(EnvFile(path, True, f"{where}.label_file"), found, variables, read)
    if body.get("env_file") is None:
        return
    try:
        entries = env_file_entries(body["env_file"], f"{where}.env_file")
    except InvalidSpec:
        return  # the server names the fault
    for entry in entries:
        _env_file(entry, found, variables, read)


def _label_files(value: Any) -> list[str]:
    listed = [value] if isinstance(value, str) else _list(value)
    return [item for item in listed if isinstance(item, str) and item]


def _env_file(entry: EnvFile, found: Discovery, variables: dict[str, str], read: Any) -> None:
    name = entry.path
    text = found.files.get(name)
    if text is None:
        text = read(name)
    if text is None:
        if entry.required:
            kind = "label_file" if entry.where.endswith(".label_file") else "env_file"
            raise InvalidSpec(f"{kind} {name!r} named in {entry.where} was not found", field=entry.where)
        return
    found.files[name] = text

    def lookup(key: str) -> str | None:
        found.variables.add(key)
        return variables.get(key)

    try:
        parse_env_file(text, f"env_file {name}", lookup)
    except InvalidSpec:
        return  # the server names the fault


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _relative_bind(item: Any) -> bool:
    """``./conf:/etc/app``, ``.:/app``, ``../shared:/x`` or the long syntax with such a ``source``."""
    source = (
        item.split(":", 1)[0]
        if isinstance(item, str)
        else item.get("source")
        if isinstance(item, dict)
        else None
    )
    return isinstance(source, str) and (source == "." or source.startswith(("./", "..")))
