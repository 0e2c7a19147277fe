"""The one way in and out of gsrl's name -> spec registries.

Each kind of data has its own registry, a plain module-level dict that can be read directly:
few-shot benchmarks (:data:`gsrl.data.datasets.FEWSHOT_REGISTRY`), fine-tuning benchmarks
(:data:`gsrl.data.property_datasets.PROPERTY_SOURCES`) and corpus file formats
(:data:`gsrl.data.corpora.CORPUS_FORMATS`). Entries go in through :func:`register`, so a name is
never silently replaced, and an unknown name is an error listing the known ones, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from gsrl.errors import UnknownName

T = TypeVar("T")


def register(registry: dict[str, T], name: str, entry: T, kind: str) -> T:
    """Add `entry` as `name`; `kind` names the registry in the error for a name already taken."""
    if name in registry:
        raise ValueError(f"{kind} {name!r} is already registered")
    registry[name] = entry
    return entry


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownName:
    """The error for a name no registry entry has, listing the names that would work."""
    return UnknownName(kind, name, known)


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """The entry registered as `name`; an unknown name is an error listing the known ones."""
    if name not in registry:
        raise unknown_name(kind, name, registry)
    return registry[name]
