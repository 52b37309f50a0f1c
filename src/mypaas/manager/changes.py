"""What a deploy would change: the services added, changed (and which of their fields) and removed, against
the app's current target release. Used by a dry run, which makes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mypaas.domain import AppSpec, ServiceSpec

REBUILT = "build"  # a service built at deploy: its image is new each time, as with `docker compose build`


@dataclass
class Changes:
    release: int | None  # the release compared against (None: the app has none yet)
    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # service -> the fields that differ
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    top: list[str] = field(default_factory=list)  # top-level keys that differ: volumes, networks

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "top": self.top,
        }


def spec_changes(current: AppSpec | None, new: AppSpec, release: int | None) -> Changes:
    """The services of ``new`` against ``current`` (the release ``release``; None for a first deploy)."""
    old = current.services if current is not None else {}
    out = Changes(release)
    for name, svc in new.services.items():
        if name not in old:
            out.added.append(name)
            continue
        fields = service_changes(old[name], svc)
        if fields:
            out.changed[name] = fields
        else:
            out.unchanged.append(name)
    out.removed = [name for name in old if name not in new.services]
    if current is not None:
        out.top = [key for key in ("volumes", "networks") if getattr(current, key) != getattr(new, key)]
    return out


def service_changes(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    """The fields of a service that differ; a service built at deploy always counts as rebuilt."""
    skip = {"name"}
    if new.build is not None:
        skip |= {"image", "image_id", "build"}  # the stored release holds the image built then
    if new.project_files:
        skip.add("image_id")  # the release runs a derived image (the files added): project_files say
    if new.replicas is None:
        skip.add("replicas")  # not declared: the current scale is kept
    before = old.model_dump(mode="json", exclude=skip)
    after = new.model_dump(mode="json", exclude=skip)
    fields = [key for key in after if before.get(key) != after[key]]
    return [REBUILT, *fields] if new.build is not None else fields
