"""Caches of what a store returned, valid while the store's change marker stays the same (Store.change_marker)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Generic, TypeVar

from kinko.storage.interface import Store

V = TypeVar("V")
#: A marker read once for a whole read-only operation (pinned_marker), with the store it belongs to.
_PINNED: ContextVar[tuple[Store, int] | None] = ContextVar("kinko_pinned_marker", default=None)


def marker_of(store: Store) -> int | None:
    """The store's change marker: the one pinned for the current operation, else a fresh read."""
    pinned = _PINNED.get()
    if pinned is not None and pinned[0] is store:
        return pinned[1]
    return store.change_marker()


@contextlib.contextmanager
def pinned_marker(store: Store) -> Iterator[None]:
    """Read the marker once for a read-only operation: every cache lookup inside uses that value.

    Safe because a cached entry is used only if it was loaded after a read of that same value, so it is at least
    as new as the state the operation started from. Not for operations that write and then read back what they
    wrote: their own commit does not move the pinned value (a re-read that must see it bypasses the cache).
    """
    marker = store.change_marker()
    if marker is None:
        yield
        return
    reset = _PINNED.set((store, marker))
    try:
        yield
    finally:
        _PINNED.reset(reset)


class FreshCache(Generic[V]):
    """Values read from `store`, each kept with the marker read before it; one is used only while the store's
    marker is still that value, so any commit anywhere (another thread, another process) makes every entry stale.
    With an engine that has no marker (None), nothing is ever served from the cache. Bounded: full means emptied.
    """

    def __init__(self, store: Store, limit: int = 4096) -> None:
        self._store, self._limit = store, limit
        self._items: dict[Hashable, tuple[int, V]] = {}

    def marker(self) -> int | None:
        return marker_of(self._store)

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
