"""PostgreSQL's change marker: every write transaction sends `NOTIFY kinko_changes` (delivered on commit only), and
each store keeps one connection that LISTENs for it, on a daemon thread, counting what arrives.

`ChangeListener.marker()` is (generation, count) folded into one int, read without any I/O. It is None — nothing is
served from a cache — while the listener is not connected and LISTENing, when it has not confirmed a round trip
with the server for STALE_AFTER seconds (a network that drops packets silently), after a fork, and after close().
Each (re)connection is a new generation, so nothing cached before a gap, when notifications may have been missed,
is ever used again. The store's own commits move the marker at once (`bump`), before their notification echoes.

The bound: a commit acknowledged on server A at time t moves server B's marker as soon as B's listener has read its
notification. If B uses a cached entry at time T, B's listener had a round trip (SELECT 1) sent at or after
T - STALE_AFTER answered, and PostgreSQL sends a listening session its pending notifications before it answers a
query, so every commit acknowledged before T - STALE_AFTER had already moved B's marker. Normally it moves within
the notification's delivery time (milliseconds; docs/server.md, bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import threading
import time
import weakref
from typing import Any

import psycopg
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from kinko.storage.sql import TABLES, Tx

log = logging.getLogger("kinko.storage")

CHANNEL = "kinko_changes"
#: What a write transaction runs instead of a bare COMMIT: the notification is queued in the transaction and sent
#: to every listener when, and only if, it commits (one round trip for both).
NOTIFY_AND_COMMIT = f"NOTIFY {CHANNEL}; COMMIT"
#: Seconds between the listener's round trips (SELECT 1) when no notification arrives.
HEARTBEAT = 0.25
#: No cache is used while the last confirmed round trip was sent longer ago than this (seconds).
STALE_AFTER = 1.0
#: Reconnection delay: doubling from the first to the second (seconds).
RETRY_FIRST, RETRY_MAX = 0.05, 2.0
#: The listener's connection notices a dead peer on its own (libpq parameters; kept when the URL sets them).
_KEEPALIVE = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2", "keepalives_count": "3",
              "tcp_user_timeout": "10000"}
_GENERATION_SHIFT = 64
#: A change made to kinko's tables by anything but kinko (an operator's SQL, a restore by COPY) notifies too:
#: a statement trigger on each table, installed with the schema where the database user may create it.
_TRIGGER = "kinko_notify"
_TRIGGER_FUNCTION = (f"CREATE OR REPLACE FUNCTION kinko_notify_change() RETURNS trigger LANGUAGE plpgsql AS "
                     f"$$ BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$")
_CREATE_TRIGGER = (f"CREATE TRIGGER {_TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {{table}} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION kinko_notify_change()")
_UNTRIGGERED = ("SELECT t FROM unnest(?::text[]) AS t WHERE NOT EXISTS "
                f"(SELECT 1 FROM pg_trigger WHERE tgname = '{_TRIGGER}' AND tgrelid = to_regclass(t))")
#: Every live listener, so a forked child stops trusting the ones whose thread stayed in the parent.
_LIVE: weakref.WeakSet[ChangeListener] = weakref.WeakSet()


def install_triggers(tx: Tx) -> None:
    """In the schema's transaction (after the migrations): a notifying trigger on every kinko table that lacks
    one. A database user who may not create them (not the tables' owner) gets a warning: kinko's own writes
    notify all the same, only changes made around kinko then reach the caches when kinko next writes."""
    missing = [row[0] for row in tx.all(_UNTRIGGERED, ([*TABLES, "schema_version"],))]
    if not missing:
        return
    tx.run("SAVEPOINT kinko_triggers")
    try:
        tx.run(_TRIGGER_FUNCTION)
        for table in missing:
            tx.run(_CREATE_TRIGGER.format(table=table))
    except pg.InsufficientPrivilege:
        tx.run("ROLLBACK TO SAVEPOINT kinko_triggers")
        log.warning("cannot create the change-notifying triggers (%s): only kinko's own writes notify",
                    ", ".join(missing))


def _forget_after_fork() -> None:
    for listener in list(_LIVE):
        listener.forked()


os.register_at_fork(after_in_child=_forget_after_fork)


class ChangeListener:
    """One LISTEN connection and its thread, started at once; `marker()` is None until it is LISTENing."""

    def __init__(self, conninfo: str, *, name: str = "kinko-pg-listen") -> None:
        given = conninfo_to_dict(conninfo)
        self._conninfo = make_conninfo(conninfo, **{k: v for k, v in _KEEPALIVE.items() if k not in given})
        self._lock = threading.Lock()  # guards _generation, _count and _marker together
        self._generation, self._count = 0, 0
        self._marker: int | None = None  # (generation, count) folded; None while notifications may be missed
        self._alive_at = float("-inf")  # monotonic time the last answered round trip was sent
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()  # close() wakes the thread through it
        self._pipe_open, self._thread_done, self._orphaned = True, False, False  # under _lock
        self._backend_pid: int | None = None
        self.connections = itertools.count()  # how many times it (re)connected (tests, logs)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _LIVE.add(self)
        self._thread.start()

    # -- what the store calls -------------------------------------------------------------------------------
    def marker(self) -> int | None:
        """The current marker, or None when a change might have been missed. No I/O."""
        marker = self._marker
        if marker is None or time.monotonic() - self._alive_at > STALE_AFTER:
            return None
        return marker

    def bump(self) -> None:
        """A change was committed (by this process, or a notification said so): move the marker."""
        with self._lock:
            self._count += 1
            if self._marker is not None:
                self._marker = (self._generation << _GENERATION_SHIFT) | self._count

    @property
    def backend_pid(self) -> int | None:
        """The listening session's server process (None while disconnected)."""
        return self._backend_pid

    def close(self, wait: float = 2.0) -> None:
        """Stop the thread and close its connection; waits at most `wait` seconds (a daemon thread left blocked
        on a dead network ends by itself once the connection's TCP timeouts give up)."""
        self._down()
        self._stop.set()
        with self._lock:
            if self._pipe_open:
                with contextlib.suppress(OSError):
                    os.write(self._wake_w, b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(wait)
        with self._lock:
            if self._thread_done:
                self._close_pipe()
            else:
                self._orphaned = True  # the thread closes the pipe when it ends
        _LIVE.discard(self)

    def forked(self) -> None:
        """In a child after fork: this listener's thread is not here; never trust its marker again. Takes no lock
        (one another thread held at the fork stays held in the child): the child has only this thread."""
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._stop.set()
        self._marker, self._backend_pid = None, None
        self._thread_done = True
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self._pipe_open:
            self._pipe_open = False
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- the thread -----------------------------------------------------------------------------------------
    def _down(self) -> None:
        with self._lock:
            self._marker = None
        self._backend_pid = None

    def _live(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._generation += 1
            self._count = 0
            self._marker = self._generation << _GENERATION_SHIFT
            self._alive_at = time.monotonic()
        self._backend_pid = conn.info.backend_pid

    def _run(self) -> None:
        delay, warned = RETRY_FIRST, False
        try:
            while not self._stop.is_set():
                try:
                    with psycopg.connect(self._conninfo, autocommit=True) as conn:
                        next(self.connections)
                        conn.execute(f"LISTEN {CHANNEL}")
                        self._live(conn)  # only now: a commit after this point is certain to be notified
                        delay, warned = RETRY_FIRST, False
                        self._serve(conn)
                except psycopg.Error as exc:
                    if not (self._stop.is_set() or warned):  # once per outage
                        warned = True
                        log.warning("change listener: %s; no caching until it reconnects", type(exc).__name__)
                finally:
                    self._down()
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, RETRY_MAX)
        finally:
            with self._lock:
                self._thread_done = True
                if self._orphaned:
                    self._close_pipe()

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        """Count notifications as they arrive; a round trip every HEARTBEAT keeps the marker trusted."""
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        beat = time.monotonic() + HEARTBEAT
        while not self._stop.is_set():
            ready = poller.poll(max(0.0, beat - time.monotonic()) * 1000)
            if self._stop.is_set():
                return
            if any(fd != self._wake_r for fd, _event in ready):
                self._drain(conn)  # a closed connection raises here
            if time.monotonic() >= beat:
                sent = time.monotonic()
                conn.execute("SELECT 1")
                self._drain(conn)  # what arrived with the answer was queued on the connection
                self._alive_at = sent
                beat = time.monotonic() + HEARTBEAT

    def _drain(self, conn: psycopg.Connection[Any]) -> None:
        for _notify in conn.notifies(timeout=0):
            self.bump()
