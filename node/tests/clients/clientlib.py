"""Helpers shared by the third-party client scripts: one way to report a wrong behaviour and one
way to wait for an event, so that every script fails the same readable way."""

import sys
import time
import traceback

# Generous: a loaded CI machine may take a while to launch a task; a correct server answers
# well within it, a wrong one never does.
WAIT_SECONDS = 90


class Wrong(Exception):
    """A client call that did not behave as it does against upstream Marathon or Mesos."""


def step(name):
    """Announces a step, so that a failure's output shows how far the client got."""
    print(f"--- {name}", flush=True)


def check(condition, message):
    """Raises `Wrong(message)` unless `condition` holds."""
    if not condition:
        raise Wrong(message)


def wait_for(what, probe, seconds=WAIT_SECONDS, tolerate=(OSError,)):
    """Calls `probe` every half second until it returns something truthy and returns that.
    Raises `Wrong` naming `what` and the last value or error seen when time runs out. Errors
    of the `tolerate` kinds (by default I/O errors, which the HTTP clients' errors are) are
    retried; any other error, such as a client rejecting the shape of an answer, ends the wait
    at once."""
    deadline = time.monotonic() + seconds
    last = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except tolerate as error:
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise Wrong(f"timed out after {seconds}s waiting for {what}; last seen: {last!r}")
        time.sleep(0.5)


def run(main):
    """Runs `main()`; on a wrong behaviour or an unexpected exception prints it and exits 1."""
    try:
        main()
    except Wrong as wrong:
        print(f"FAILED: {wrong}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:
        print("FAILED with an exception from the client:", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
    print("OK", flush=True)
