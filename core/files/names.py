"""How a file being written is named: a hidden temporary name (or backup) that carries the host
and process that made it, and back from such a name to the user's file (for messages).
"""

from __future__ import annotations

import os
import re
import socket
import uuid

# Temporary files and backups carry the host and process that made them, so a later run can
# tell those of a dead run (killed, out of memory) from those of a run still going.
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
TEMPORARY_TAG = re.compile(r"\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>[0-9]+)-[0-9a-f]{8}\.(?P<kind>partial|backup)")


def temporary_suffix(kind: str) -> str:
    return f".{HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}"


def final_name(path: str) -> str:
    """The file a temporary path or backup of AtomicFiles (perhaps one of another) stands for,
    for messages: the user never needs to know the hidden names."""
    folder, name = os.path.split(path)
    while True:
        match = re.fullmatch(r"\.(.+)" + TEMPORARY_TAG.pattern + r"(\.[^.]*)?", name)
        if not match:
            return os.path.join(folder, name)
        name = match.group(1) + (match.group(5) or "")


def message_of(error: BaseException) -> str:
    """One line for the user of a failed run: a failed file operation names the user's file,
    never the hidden temporary one it went to; a memory error says how to go on. Empty for an
    error without a message (a caller may name its type instead)."""
    if isinstance(error, MemoryError):
        detail = " ".join(str(error).split()) or type(error).__name__
        return f"Not enough memory for this raster: {detail} (set MEMORY_LIMIT lower to process it block by block)"
    if isinstance(error, OSError) and error.filename:
        return f"{error.strerror}: {final_name(error.filename)}"
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split())
