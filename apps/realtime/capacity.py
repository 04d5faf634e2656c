"""A consumer that stops reading (a frozen tab, a client gone without a goodbye) must
not hold back the others: channels_redis gives each channel a bounded queue
(``capacity`` in CHANNEL_LAYERS) and, when a group message finds one full, skips that
channel and sends to the rest. It says so only in an INFO line of its own logger,
``"%s of %s channels over capacity in group %s"``. This filter, installed on that logger
(settings.LOGGING), turns the line into a WARNING that names the group and counts the
dropped messages in ``lastmile_channel_over_capacity_total``, so an operator sees
stalled sockets. The stalled client recovers by itself: it resyncs from the event log
when it reads again and finds a sequence gap (or its heartbeat shows one)."""

from __future__ import annotations

import logging

from apps.common import metrics

# The format string channels_redis.core logs (channels-redis 4.x); matched exactly, so a
# reworded line is ignored rather than misread.
OVER_CAPACITY = "%s of %s channels over capacity in group %s"


class OverCapacityFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == OVER_CAPACITY and isinstance(record.args, tuple) and len(record.args) == 3:
            dropped, _, group = record.args
            kind = str(group).split(".", 1)[0]  # org, driver, track, user: never the ids (cardinality)
            metrics.channel_over_capacity.labels(group=kind).inc(int(dropped))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "%s of %s channels over capacity in group %s: their messages were dropped (stalled sockets)"
        return True
