"""One background thread per process, owned by an object: the ping writer, the inbound
webhook writer and the position fan-out each run one."""

from __future__ import annotations

import os
import threading


class OwnThread:
    """Starts its daemon thread on first use and again in a forked child (a fork does not
    copy threads), and stops and joins it on shutdown. Subclasses name the thread and
    give ``_run(stopping)``; ``_wake`` sets whatever event their loop waits on, so a stop
    is noticed at once, and ``_starting`` resets per-run state under the start lock."""

    thread_name = "lastmile-thread"

    def __init__(self) -> None:
        self._start_lock = threading.Lock()  # guards _thread and _stopping
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def ensure_started(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():  # forked: the parent's thread did not come along
                self._pid, self._thread = os.getpid(), None
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = threading.Event()
            self._starting()
            self._thread = threading.Thread(target=self._run, args=(self._stopping,), name=self.thread_name,
                                            daemon=True)
            self._thread.start()

    def stop_thread(self, timeout: float) -> None:
        """Ask the thread to stop and wait for it (not from the thread itself)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
            self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _starting(self) -> None:
        """Nothing to reset by default."""

    def _wake(self) -> None:
        """Nothing to wake by default: the loop notices ``stopping`` on its own."""
