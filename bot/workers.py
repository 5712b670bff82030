"""Who holds a claim: the identity a worker writes into the rows it claims (outbox leases, job runs),
and whether the worker behind an identity is known to be gone.

An identity is ``<node>:<pid>:<random>``. The node names one process namespace on one machine (the
host name plus a short digest of the kernel's boot id and the pid namespace), so two containers on
one host, or two hosts of the same name, never take each other's processes for their own. A claim
made by a process of *this* node whose pid no longer runs (or is a zombie) is abandoned: a worker
killed mid-push or mid-job gives its claims back at once when the server restarts, instead of after
the lease or staleness timeout, which stays the rule for every other node."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from functools import cache
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@cache
def node() -> str:
    """This process namespace's name (at most 28 characters)."""
    ident = _read("/proc/sys/kernel/random/boot_id")
    try:
        ident += os.readlink("/proc/self/ns/pid")
    except OSError:
        pass
    digest = hashlib.sha1(ident.encode()).hexdigest()[:6] if ident else "000000"
    return f"{socket.gethostname()[:20]}-{digest}"


def identity() -> str:
    """A new claim identity for this process (at most 44 characters)."""
    return f"{node()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    stat = _read(f"/proc/{pid}/stat")
    # the state follows the parenthesised command name; Z (zombie) and X (dead) are gone
    return not (stat and stat.rsplit(")", 1)[-1].split()[:1] in (["Z"], ["X"]))


def gone(claimed_by: str | None) -> bool:
    """True when `claimed_by` names a process of this node that no longer runs. False when unsure
    (another node, an old-style identity, this very process)."""
    if not claimed_by:
        return False
    parts = claimed_by.split(":")
    if len(parts) != 3 or parts[0] != node() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    return pid != os.getpid() and not _running(pid)
