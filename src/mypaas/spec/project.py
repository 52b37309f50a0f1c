"""A compose project read as ``docker compose`` reads it: the ``-f`` files merged in order, each file's
``include`` and ``extends`` resolved, variables interpolated, services outside the active profiles left out.

Files are named by their path relative to the project folder (the first compose file's folder), as the CLI
sends them. Relative paths in the ``-f`` files are relative to the project folder; in an included file to
its own folder (or the ``project_directory`` given), in a file named by ``extends.file`` to that file's
folder: they are rewritten relative to the project folder (``./sub/app``), so the rest of MyPaas sees one.

Per file, in docker compose's order: parse (``!reset``/``!override`` noted), interpolate, check the
structure, include, extends, then merge over the files before it (:mod:`mypaas.spec.merge`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mypaas.errors import InvalidSpec
from mypaas.spec.envfile import parse_env_file
from mypaas.spec.interpolate import Variables, interpolate_tree
from mypaas.spec.merge import enforce_unique, merge, remove_paths
from mypaas.spec.paths import folder_of, rebase, resolve
from mypaas.spec.profiles import apply_profiles
from mypaas.spec.schema import check_structure
from mypaas.spec.yamlload import Document, Path, check_size, load_documents

Reader = Callable[[str], "str | None"]
RESOURCES = ("services", "volumes", "networks", "secrets", "configs", "models")


@dataclass(frozen=True)
class ProjectSource:
    """What a deploy names: the compose files in ``-f`` order and how to read any file of the project."""

    compose_files: tuple[str, ...]
    files: Mapping[str, str] = field(default_factory=dict)  # the files sent, by name
    read: Reader | None = None  # else: a file's text by name (relative to the project folder), or None
    shell: Mapping[str, str] = field(default_factory=dict)  # the CLI user's variables (they win)
    env_files: tuple[str, ...] | None = None  # --env-file; None: .env when there is one
    profiles: tuple[str, ...] | None = None  # --profile; None: COMPOSE_PROFILES, else none


@dataclass
class Project:
    model: dict[str, Any]  # the merged file, services of inactive profiles left out
    variables: dict[str, str]  # the shell's over the env file's: valueless entries take theirs
    warnings: list[str]
    used: set[str]  # every variable name looked up
    files: dict[str, str]  # every file read, by name
    disabled: dict[str, list[str]]  # services left out -> their profiles


def load_project(source: ProjectSource) -> Project:
    """Read, merge and interpolate the project; InvalidSpec names the file and field at fault."""
    if not source.compose_files:
        raise InvalidSpec("no compose file given", field="compose_files")
    return _Loader(source).load()


class _Loader:
    def __init__(self, source: ProjectSource) -> None:
        self.source = source
        self.files: dict[str, str] = {}
        self.used: set[str] = set()
        self.several = len(source.compose_files) > 1
        self.extended: dict[str, dict[str, Any]] = {}  # extends files read, their services

    def load(self) -> Project:
        variables = self.project_variables()
        model: dict[str, Any] = {}
        for name in self.source.compose_files:
            model = self.add_file(model, name, ".", variables, ())
        enforce_unique(model)
        disabled = apply_profiles(model, self.active_profiles(variables))
        return Project(model, variables.values(), variables.warnings(), self.used, self.files, disabled)

    def read(self, name: str, what: str, required: bool = True) -> str | None:
        read = self.source.read or self.source.files.get
        text = self.files[name] if name in self.files else read(name)
        if text is None:
            if required:
                raise InvalidSpec(f"{what} {name!r} was not found", field=name)
            return None
        check_size(text, name)
        self.files[name] = text
        return text

    # -- variables --------------------------------------------------------------------------------------
    def project_variables(self) -> Variables:
        shell = Variables(self.source.shell, used=self.used)
        names = self.source.env_files
        if names is None:
            names = (".env",) if self.read(".env", "env file", required=False) is not None else ()
        values = self.env_values(names, shell)
        return Variables(self.source.shell, values, used=self.used)

    def env_values(self, names: tuple[str, ...], lookup: Variables) -> dict[str, str]:
        """The variables of env files read in order; values interpolate from ``lookup``, then the files."""
        values: dict[str, str] = {}
        for name in names:
            text = self.read(name, "env file") or ""

            def get(key: str) -> str | None:
                found = lookup.get(key)
                return values.get(key) if found is None else found

            values.update(parse_env_file(text, name, get))
        return values

    def active_profiles(self, variables: Variables) -> set[str]:
        if self.source.profiles:
            return set(self.source.profiles)
        listed = variables.get("COMPOSE_PROFILES") or ""
        return {name.strip() for name in listed.split(",") if name.strip()}

    # -- files ------------------------------------------------------------------------------------------
    def add_file(
        self, model: dict[str, Any], name: str, base: str, variables: Variables, stack: tuple[str, ...]
    ) -> dict[str, Any]:
        """``model`` with the compose file ``name`` merged over it."""
        for document in self.documents(name, base, variables, stack):
            model = remove_paths(model, [*document.resets, *document.overrides])
            model = merge(model, document.tree)
        return model

    def documents(
        self, name: str, base: str, variables: Variables, stack: tuple[str, ...]
    ) -> Iterator[Document]:
        if name in stack:
            chain = " -> ".join((*stack, name))
            raise InvalidSpec(f"include cycle: {chain}", field=name)
        label = name if self.several or stack else ""
        text = self.read(name, "compose file") or ""
        documents = [
            document for document in load_documents(text, name, label=label) if document.tree is not None
        ]
        if not documents:
            where = f"{label} is empty: " if label else "the file is empty: "
            raise InvalidSpec(f"{where}a compose file must be a mapping with a 'services' key", field=name)
        for document in documents:
            with _in_file(label):
                tree = self.prepared(document.tree, name, base, variables, label)
                if "include" in tree:
                    tree = self.include(tree, tree.pop("include"), base, variables, (*stack, name))
                self.resolve_extends(tree, name, base, variables, document.resets)
            yield Document(tree, document.resets, document.overrides)

    def prepared(
        self, tree: Any, name: str, base: str, variables: Variables, label: str = ""
    ) -> dict[str, Any]:
        """A document interpolated, checked and rebased (its top-level ``x-*`` keys and ``version`` gone);
        the warnings of its unset variables name the file ``label`` (when the project has several)."""
        if tree is None:
            return {}
        if not isinstance(tree, dict):
            raise InvalidSpec("a compose file must be a mapping with a 'services' key", field=name)
        kept = {
            key: value for key, value in tree.items() if not (isinstance(key, str) and key.startswith("x-"))
        }
        known = set(variables.unset)
        out: dict[str, Any] = interpolate_tree(kept, variables, "")
        if label:
            for unset in set(variables.unset) - known:
                variables.unset[unset] = f"{label}: {variables.unset[unset]}"
        check_structure(out)
        out.pop("version", None)
        rebase(out, base)
        return out

    # -- include ----------------------------------------------------------------------------------------
    def include(
        self, tree: dict[str, Any], entries: Any, base: str, variables: Variables, stack: tuple[str, ...]
    ) -> dict[str, Any]:
        for index, item in enumerate(entries or []):
            where = f"include[{index}]"
            entry = {"path": item} if isinstance(item, str) else item
            paths = entry.get("path")
            paths = [paths] if isinstance(paths, str) else paths
            if not paths:
                raise InvalidSpec(
                    f"{where}.path is required (the compose file to include)", field=f"{where}.path"
                )
            names = [resolve(base, str(path)) for path in paths]
            folder = entry.get("project_directory")
            project = resolve(base, str(folder)) if folder is not None else folder_of(names[0])
            env = entry.get("env_file")
            env_names: tuple[str, ...] = ()
            if env is None:
                dotenv = resolve(project, ".env")
                env_names = (dotenv,) if self.read(dotenv, "env file", required=False) is not None else ()
            else:
                env_names = tuple(
                    resolve(base, str(path)) for path in ([env] if isinstance(env, str) else env)
                )
            own = variables.below(self.env_values(env_names, variables))
            imported: dict[str, Any] = {}
            for name in names:
                imported = self.add_file(imported, name, project, own, stack)
            _import(tree, imported)
        return tree

    # -- extends ----------------------------------------------------------------------------------------
    def resolve_extends(
        self, tree: dict[str, Any], name: str, base: str, variables: Variables, resets: list[Path]
    ) -> None:
        services = tree.get("services")
        if not isinstance(services, dict):
            return
        for service in list(services):
            services[service] = self.extend(service, services, name, base, variables, resets, ())

    def extend(
        self,
        service: str,
        services: dict[str, Any],
        name: str,
        base: str,
        variables: Variables,
        resets: list[Path],
        chain: tuple[tuple[str, str], ...],
    ) -> Any:
        """The service with what it extends merged under it (recursively)."""
        body = services[service]
        if not isinstance(body, dict) or "extends" not in body:
            return body
        where = f"services.{service}.extends"
        extends = body["extends"]
        ref, other = (
            (extends, None) if isinstance(extends, str) else (extends.get("service"), extends.get("file"))
        )
        if not isinstance(ref, str) or not ref:
            raise InvalidSpec(
                f"{where}.service is required (the service to extend)", field=f"{where}.service"
            )
        if (name, service) in chain:
            cycle = " -> ".join(f"{file}:{svc}" for file, svc in (*chain, (name, service)))
            raise InvalidSpec(f"{where}: extends goes round in a circle ({cycle})", field=where)
        link = (*chain, (name, service))
        if other is not None:
            file = resolve(base, str(other))
            found = self.extends_file(file, variables)
            if ref not in found:
                raise InvalidSpec(f"{where}: service {ref!r} not found in {other}", field=where)
            parent = self.extend(ref, found, file, folder_of(file), variables, [], link)
        else:
            if ref not in services:
                raise InvalidSpec(f"{where}: service {ref!r} not found in {name}", field=where)
            parent = self.extend(ref, services, name, base, variables, resets, link)
            services[ref] = parent
        own = {key: value for key, value in body.items() if key != "extends"}
        parent = remove_paths(parent, [path[2:] for path in resets if path[:2] == ("services", service)])
        return merge(parent, own, ("services", service))

    def extends_file(self, name: str, variables: Variables) -> dict[str, Any]:
        """The services of a file named by ``extends.file`` (its own includes are not read, as in compose)."""
        if name not in self.extended:
            text = self.read(name, "extends file") or ""
            services: dict[str, Any] = {}
            for document in load_documents(text, name, label=name):
                with _in_file(name):
                    tree = self.prepared(document.tree, name, folder_of(name), variables, name)
                found = tree.get("services")
                services.update(found if isinstance(found, dict) else {})
            self.extended[name] = services
        return self.extended[name]


def _import(tree: dict[str, Any], imported: dict[str, Any]) -> None:
    """The resources of an included project added to ``tree``; where both define one, ``tree`` wins."""
    for key in RESOURCES:
        found = imported.get(key)
        if not isinstance(found, dict):
            continue
        mine = tree.get(key) if isinstance(tree.get(key), dict) else {}
        assert isinstance(mine, dict)
        for name, body in found.items():
            mine[name] = merge(body, mine[name], (key, name)) if name in mine else body
        tree[key] = mine


@contextmanager
def _in_file(label: str) -> Iterator[None]:
    """Errors raised inside say which file they are about (when the project has several)."""
    try:
        yield
    except InvalidSpec as exc:
        if not label or exc.message.startswith(f"{label}: ") or f" in {label}" in exc.message:
            raise
        raise InvalidSpec(f"{label}: {exc.message}", field=exc.field) from exc
