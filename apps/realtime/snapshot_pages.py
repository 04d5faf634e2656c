"""A snapshot as WebSocket frames no larger than a page.

Daphne (autobahn) refuses to send a message over 1 MiB, in either direction, and a
large organization's console snapshot is more than that: 3,000 drivers' rows and
positions, or a day of thousands of stops. So a snapshot larger than
SNAPSHOT_WHOLE_MAX_BYTES goes out, in pages of about SNAPSHOT_PAGE_BYTES, as (docs/realtime.md, "Large snapshots"):

1. ``snapshot`` with every list emptied and ``pages``, the number of pages to come;
2. ``snapshot.page`` messages, each holding the next items of one or more lists, to
   be appended in order;
3. ``snapshot.end``, after which the client applies the assembled snapshot.

A snapshot that fits is one ``snapshot`` message, as it always was. Items are encoded
once: their size decides the pages, and the frames are joined from the same text.
"""

from __future__ import annotations

import json
from typing import Any

# A quarter of the 1 MiB cap: pages stay well under it whatever one item weighs (a
# route of a few hundred stops is tens of KB), and a browser parses each in a few ms.
SNAPSHOT_PAGE_BYTES = 256 * 1024
# Only a snapshot larger than this is paged; smaller ones stay one message, with a
# quarter of the cap to spare. (With every 2,000-driver snapshot paged, bench/realtime.py
# saw some drivers' final positions never reach its consoles, for a reason not yet
# found: docs/performance.md, "Live fan-out". Until it is, paging is kept to the
# organizations that could not connect at all without it.)
SNAPSHOT_WHOLE_MAX_BYTES = 768 * 1024

# The lists a snapshot may carry in bulk, in the order they are paged.
PAGED_LISTS = ("routes", "drivers", "positions")


def _dumps(value: Any) -> str:
    # As AsyncJsonWebsocketConsumer encodes (ASCII only, so characters are bytes).
    return json.dumps(value)


def snapshot_frames(*, seq: int, reason: str, data: dict[str, Any],
                    page_bytes: int | None = None, whole_max_bytes: int | None = None) -> list[str]:
    """The text frames that carry ``data`` as the snapshot at ``seq``."""
    page_bytes = page_bytes or SNAPSHOT_PAGE_BYTES
    whole = _dumps({"type": "snapshot", "seq": seq, "reason": reason, "data": data})
    if len(whole) <= (whole_max_bytes or SNAPSHOT_WHOLE_MAX_BYTES):
        return [whole]
    lists = {key: [_dumps(item) for item in data[key]] for key in PAGED_LISTS if isinstance(data.get(key), list)}
    pages: list[dict[str, list[str]]] = []
    page: dict[str, list[str]] = {}
    size = 0
    for key, items in lists.items():
        for item in items:
            if page and size + len(item) > page_bytes:
                pages.append(page)
                page, size = {}, 0
            page.setdefault(key, []).append(item)
            size += len(item) + 2
    if page:
        pages.append(page)
    header = {"type": "snapshot", "seq": seq, "reason": reason, "data": {**data, **{key: [] for key in lists}},
              "pages": len(pages)}
    frames = [_dumps(header)]
    for number, page in enumerate(pages, start=1):
        body = ", ".join(f"{_dumps(key)}: [{', '.join(items)}]" for key, items in page.items())
        frames.append(f'{{"type": "snapshot.page", "seq": {int(seq)}, "page": {number}, "data": {{{body}}}}}')
    frames.append(_dumps({"type": "snapshot.end", "seq": seq, "pages": len(pages)}))
    return frames
