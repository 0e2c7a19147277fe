"""msgpack is the wire and log format for structured data (specs, decisions, metrics, metadata).

Only plain types cross: no pickle of untrusted bytes anywhere in the project.
"""

from __future__ import annotations

from typing import Any

import msgpack


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(payload: bytes) -> Any:
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)
