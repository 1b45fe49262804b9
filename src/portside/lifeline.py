"""Child processes of `portside serve` that die with it.

`portside serve` execs granian, whose worker processes (and our job workers) are its
children. When that main process is killed with SIGKILL nothing runs to stop them: they
kept serving the old code on the port, and a new `portside serve` was refused because
the address was taken. Each child therefore asks the kernel (Linux `PR_SET_PDEATHSIG`)
for a signal the moment its parent dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

# The pid of `portside serve` (granian's master after the exec), for its children.
SERVE_PID_ENV = "PORTSIDE_INTERNAL_SERVE_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Have the kernel send `signum` to this process when its parent exits; True if set.

    Only for children of `portside serve` (SERVE_PID_ENV names the parent); a no-op
    elsewhere and on systems without prctl. A parent gone before the request was made
    is caught by comparing the parent pid afterwards.
    """
    expected = os.environ.get(SERVE_PID_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != int(expected):  # the parent died before prctl: we are an orphan
        os.kill(os.getpid(), signum)
    return True
