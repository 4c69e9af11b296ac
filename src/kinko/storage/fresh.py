"""Caches of what a store returned, valid while the store's change marker stays the same (Store.change_marker)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from kinko.storage.interface import Store

V = TypeVar("V")


class FreshCache(Generic[V]):
    """Values read from `store`, each kept with the marker read before it; one is used only while the store's
    marker is still that value, so any commit anywhere (another thread, another process) makes every entry stale.
    With an engine that has no marker (None), nothing is ever served from the cache. Bounded: full means emptied.
    """

    def __init__(self, store: Store, limit: int = 4096) -> None:
        self._store, self._limit = store, limit
        self._items: dict[Hashable, tuple[int, V]] = {}

    def marker(self) -> int | None:
        return self._store.change_marker()

    def get(self, key: Hashable, load: Callable[[], V], marker: int | None = None) -> V:
        """The cached value for `key`, or `load()` (cached). `marker`: one the caller read already, before any
        data it combines with this value (saves a second read of it)."""
        if marker is None:
            marker = self.marker()
            if marker is None:
                return load()
        entry = self._items.get(key)
        if entry is not None and entry[0] == marker:
            return entry[1]
        value = load()
        if len(self._items) >= self._limit:
            self._items = {}
        self._items[key] = (marker, value)
        return value

    def clear(self) -> None:
        self._items = {}
