"""What ``mypaas image rm`` names, and which manifests that deletes: ``REPO:TAG`` (several tags of one
manifest named together), ``REPO@sha256:…`` (a manifest and every tag of it) and ``REPO`` with ``--all``
(every manifest of the repository). Pure: the registry's contents come in as a listing.

Distribution deletes manifests, not tags: a tag goes with its manifest, and so does every other tag of it.
So a manifest is deleted only when each of its tags was named (or its digest, or the whole repository).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mypaas.errors import Conflict, InvalidSpec

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPO_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
USAGE = "REPO:TAG, REPO@sha256:DIGEST, or REPO with --all"
RELEASE_TAG = re.compile(r"v[0-9]+|id-[0-9a-f]{12}")  # the tags publishing gives an app's images


@dataclass(frozen=True)
class ImageRef:
    """One name given: a tag, a digest, or (``tag`` and ``digest`` both None) a whole repository."""

    repo: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repo}@{self.digest}"
        return f"{self.repo}:{self.tag}" if self.tag else self.repo


@dataclass(frozen=True)
class Doomed:
    """A manifest to delete, with the tags that go with it."""

    repo: str
    digest: str
    tags: tuple[str, ...]
    size: int = 0  # compressed, as stored


@dataclass(frozen=True)
class Listing:
    """One repository's tags: tag -> (digest, compressed size)."""

    tags: dict[str, tuple[str, int]] = field(default_factory=dict)

    def of(self, digest: str) -> list[str]:
        return sorted(t for t, (d, _) in self.tags.items() if d == digest)


def parse_ref(text: str, *, whole: bool = False, registry_addr: str = "") -> ImageRef:
    """``text`` as an ImageRef; ``whole`` (``--all``) wants a bare repository. A leading registry
    address (``127.0.0.1:5000/``) is dropped, as in the references `mypaas releases` shows."""
    given = text.strip()
    if registry_addr and given.startswith(f"{registry_addr}/"):
        given = given[len(registry_addr) + 1 :]
    if whole:
        if not REPO_RE.fullmatch(given):
            raise InvalidSpec(f"--all takes repository names (e.g. myapp/web), got {text!r}", field="image")
        return ImageRef(given)
    repo, at, digest = given.partition("@")
    if at:
        if not DIGEST_RE.fullmatch(digest) or not REPO_RE.fullmatch(repo):
            raise InvalidSpec(f"expected REPO@sha256:<64 hex digits>, got {text!r}", field="image")
        return ImageRef(repo, digest=digest)
    repo, colon, tag = given.rpartition(":")
    if not colon or "/" in tag:
        if REPO_RE.fullmatch(given):
            raise InvalidSpec(f"{text!r} is a repository: add --all to remove all of it", field="image")
        raise InvalidSpec(f"expected {USAGE}, got {text!r}", field="image")
    if not REPO_RE.fullmatch(repo) or not TAG_RE.fullmatch(tag):
        raise InvalidSpec(f"expected {USAGE}, got {text!r}", field="image")
    return ImageRef(repo, tag=tag)


def plan(
    refs: Iterable[ImageRef], listing: Callable[[str], Listing], *, whole_manifests: bool = True
) -> tuple[list[Doomed], list[ImageRef]]:
    """The manifests the named ``refs`` delete, and the refs the registry does not have.

    Conflict when a named tag's manifest has other tags that were not named (they would go too);
    without ``whole_manifests`` (nothing is deleted in the registry) each one carries the tags named."""
    refs = list(dict.fromkeys(refs))
    listings: dict[str, Listing] = {}
    named: dict[tuple[str, str], set[str]] = {}  # (repo, digest) -> tags named (every tag: all of it)
    missing: list[ImageRef] = []
    for ref in refs:
        if ref.repo not in listings:
            listings[ref.repo] = listing(ref.repo)
        tags = listings[ref.repo].tags
        if ref.tag is not None:
            if ref.tag not in tags:
                missing.append(ref)
                continue
            named.setdefault((ref.repo, tags[ref.tag][0]), set()).add(ref.tag)
        elif ref.digest is not None:
            if not any(d == ref.digest for d, _ in tags.values()):
                missing.append(ref)
                continue
            named.setdefault((ref.repo, ref.digest), set()).update(listings[ref.repo].of(ref.digest))
        elif not tags:
            missing.append(ref)
        else:
            for tag, (digest, _) in tags.items():
                named.setdefault((ref.repo, digest), set()).add(tag)
    doomed = []
    for (repo, digest), tags_named in named.items():
        every = listings[repo].of(digest)
        others = [t for t in every if t not in tags_named]
        if others and whole_manifests:
            raise Conflict(_shared(repo, digest, sorted(tags_named), others), field="image")
        size = listings[repo].tags[every[0]][1] if every else 0
        doomed.append(Doomed(repo, digest, tuple(every if whole_manifests else sorted(tags_named)), size))
    return doomed, missing


def releases_own(repo: str, listing: Listing) -> tuple[list[Doomed], list[str]]:
    """The manifests of an app's repository that only its releases tagged (vN, id-…), to delete with
    the app; and the other tags (pushed or imported by hand), kept with their manifests."""
    by_digest: dict[str, list[str]] = {}
    for tag, (digest, _) in sorted(listing.tags.items()):
        by_digest.setdefault(digest, []).append(tag)
    doomed: list[Doomed] = []
    kept: list[str] = []
    for digest, tags in by_digest.items():
        if all(RELEASE_TAG.fullmatch(t) for t in tags):
            doomed.append(Doomed(repo, digest, tuple(tags), listing.tags[tags[0]][1]))
        else:
            kept.extend(f"{repo}:{t}" for t in tags)
    return doomed, kept


def _shared(repo: str, digest: str, named: list[str], others: list[str]) -> str:
    given = ", ".join(f"{repo}:{t}" for t in named)
    every = " ".join(f"{repo}:{t}" for t in sorted([*named, *others]))
    return (
        f"{given} shares its manifest with {', '.join(others)}, which would go too: name them all "
        f"(mypaas image rm {every}), or give the digest ({repo}@{digest})"
    )
