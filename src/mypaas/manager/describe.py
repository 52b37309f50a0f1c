"""What a release made by a deploy without ``-m`` says it changed, in a few words: the images, the
environment keys set and removed, the project files, the services added and removed — e.g.
``web image uxhello/web:v2, env +DEBUG; -worker``. Built from the dry run's diff (changes.py)."""

from __future__ import annotations

from mypaas.domain import AppSpec, ServiceSpec
from mypaas.manager.changes import REBUILT, spec_changes

MAX_LEN = 160  # a release listing's line: longer descriptions end with "…"
UNCHANGED = "Redeploy (nothing changed)"


def describe_deploy(current: AppSpec | None, new: AppSpec, app: str) -> str:
    """A short description of ``new`` against ``current`` (None: the first release of ``app``)."""
    if current is None:
        images = [f"{name} {_image(svc, app)}" for name, svc in new.services.items()]
        return _short("First deploy: " + "; ".join(images))
    changes = spec_changes(current, new, None)
    parts = [f"+{name} {_image(new.services[name], app)}" for name in changes.added]
    for name, fields in changes.changed.items():
        said = _fields(current.services[name], new.services[name], fields, app)
        parts.append(f"{name} {', '.join(said)}")
    parts += [f"-{name}" for name in changes.removed]
    parts += changes.top
    return _short("; ".join(parts)) if parts else UNCHANGED


def _image(svc: ServiceSpec, app: str) -> str:
    return "(built)" if svc.build is not None or _made_here(svc, app) else svc.image or "(image)"


def _made_here(svc: ServiceSpec, app: str) -> bool:
    """An image MyPaas tagged itself (``mypaas-APP/SERVICE:…``: a build, the project files added): its
    tag says nothing."""
    return (svc.image or "").startswith(f"mypaas-{app}/{svc.name}:")


def _fields(old: ServiceSpec, new: ServiceSpec, fields: list[str], app: str) -> list[str]:
    out = []
    if REBUILT in fields or (_made_here(new, app) and not new.project_files and "image" in fields):
        out.append("rebuilt")
    elif _made_here(new, app):
        pass  # the project files made the image: they are named below
    elif "image" in fields:
        out.append(f"image {new.image}")
    elif "image_id" in fields:
        out.append(f"image {new.image} (new digest)")
    if "environment" in fields:
        out.append("env " + " ".join(_keys(old.environment, new.environment)))
    if "project_files" in fields:
        changed = {f.source for f in new.project_files if f not in old.project_files}
        changed |= {f.source for f in old.project_files if f not in new.project_files}
        out.append(" ".join(["files", *sorted(changed)]))
    skip = {REBUILT, "image", "image_id", "environment", "project_files"}
    out += [f for f in fields if f not in skip]
    return out


def _keys(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """``+KEY`` set, ``~KEY`` changed, ``-KEY`` removed (names only: values may be secret)."""
    marks = [f"+{k}" for k in new if k not in old]
    marks += [f"~{k}" for k in new if k in old and old[k] != new[k]]
    return marks + [f"-{k}" for k in old if k not in new]


def _short(text: str) -> str:
    return text if len(text) <= MAX_LEN else text[: MAX_LEN - 1].rstrip() + "…"
