"""An in-memory registry HTTP API for unit tests (the RegistryApi protocol): repositories of tags, each
tag naming a manifest by digest; deleting a manifest takes its tags with it, as Distribution does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mypaas.errors import NotFound
from mypaas.registry.client import Manifest


@dataclass
class FakeRegistry:
    tags_of: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> manifest digest
    manifests: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)  # -> (size, config)

    def push(self, repo: str, tag: str, image_id: str, size: int = 1000) -> str:
        """Store ``image_id`` (its config digest) as ``repo:tag``; answers the manifest digest."""
        digest = "sha256:" + hashlib.sha256(f"{image_id}/{size}".encode()).hexdigest()
        self.manifests[(repo, digest)] = (size, image_id)
        self.tags_of.setdefault(repo, {})[tag] = digest
        return digest

    def repositories(self) -> list[str]:
        return sorted(self.tags_of)  # a repository stays listed when emptied, as in Distribution

    def tags(self, repo: str) -> list[str]:
        return sorted(self.tags_of.get(repo, {}))

    def manifest(self, repo: str, tag: str) -> Manifest:
        digest = self.tags_of.get(repo, {}).get(tag)
        if digest is None:
            raise NotFound(f"not in the registry: {repo}/manifests/{tag}", field="image")
        size, config = self.manifests[(repo, digest)]
        return Manifest(repo=repo, tag=tag, digest=digest, size=size, config=config)

    def delete(self, repo: str, digest: str) -> None:
        if self.manifests.pop((repo, digest), None) is None:
            raise NotFound(f"{repo}@{digest} is not in the registry", field="image")
        tags = self.tags_of.get(repo, {})
        for tag in [t for t, d in tags.items() if d == digest]:
            del tags[tag]
