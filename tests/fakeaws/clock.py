"""The fake's notion of time, and the timer thread that moves resources along.

AWS checks request dates, token and credential expiry against its own clock, not the
client's. The fake keeps one clock, real time plus an offset that tests move: advancing it
makes a client's signatures look old (skew), expires IMDS tokens and credentials, and fires
every state transition that has come due (an attach, a termination) at once, so a test of a
30-second delay does not wait 30 seconds.

Transitions run on one Scheduler thread, in due order, whether or not anybody polls: that is
what lets an ENI become "attached" (and the harness hot-plug its veth) while the client is
still sleeping between DescribeNetworkInterfaces calls.
"""

import heapq
import itertools
import logging
import threading
import time

log = logging.getLogger("fakeaws")


class Clock:
    """Wall-clock time shifted by an offset that tests control."""

    def __init__(self):
        self._lock = threading.Lock()
        self._offset = 0.0
        self._listeners = []

    def now(self):
        """Seconds since the epoch, as the fake AWS sees it."""
        with self._lock:
            return time.time() + self._offset

    @property
    def offset(self):
        with self._lock:
            return self._offset

    def set_offset(self, seconds):
        """Put the fake's clock `seconds` ahead of the host's (negative: behind)."""
        with self._lock:
            previous = self._offset
            self._offset = float(seconds)
        self._notify()
        return previous

    def advance(self, seconds):
        """Move the fake's clock forward; whatever came due runs now."""
        if seconds < 0:
            raise ValueError("advance_clock moves forward only; use set_clock_offset")
        with self._lock:
            self._offset += float(seconds)
            offset = self._offset
        self._notify()
        return offset

    def on_change(self, callback):
        """Call `callback()` whenever the offset changes (the scheduler re-plans)."""
        self._listeners.append(callback)

    def _notify(self):
        for callback in self._listeners:
            callback()


class Scheduler:
    """Runs callbacks at fake-clock times, one at a time, on its own thread.

    Callbacks run without any lock of the scheduler held, so they may schedule more work or
    call user hooks that take their time. Exceptions in a callback are kept (see `errors`)
    instead of killing the thread: a broken hook must not freeze every later transition.
    """

    def __init__(self, clock):
        self._clock = clock
        self._cond = threading.Condition()
        self._heap = []
        self._seq = itertools.count()
        self._stopped = False
        self._running = False
        self._thread = None
        self.errors = []
        clock.on_change(self._wake)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="fakeaws-scheduler", daemon=True)
        self._thread.start()

    def stop(self):
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def call_at(self, when, callback, *args):
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), callback, args))
            self._cond.notify_all()

    def call_later(self, delay, callback, *args):
        self.call_at(self._clock.now() + max(0.0, float(delay)), callback, *args)

    def idle(self, timeout=None):
        """Wait until nothing is due now and no callback runs; False on timeout.

        Tests use it after advance_clock to know every transition that came due is done.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._running or (self._heap and self._heap[0][0] <= self._clock.now()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _wake(self):
        with self._cond:
            self._cond.notify_all()

    def _run(self):
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - self._clock.now()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, callback, args = heapq.heappop(self._heap)
                self._running = True
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - kept for the test to see
                log.exception("fakeaws: %s failed on the scheduler thread", getattr(callback, "__name__", callback))
                self.errors.append(exc)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
