"""The baseline for ``bench/realtime.py``: the least a live-position relay can do.

    .venv/bin/python -m bench.relay_baseline --port 8765 --redis-url redis://127.0.0.1:6379/9

A plain ``websockets`` server with a Redis Pub/Sub fan-out and nothing else: no
Django, no sessions, no database, no validation beyond "is it JSON with numbers".
It speaks the subset of docs/realtime.md that the bench's clients use, so the same
client code measures both:

* ``/ws/driver/?driver=<id>``: ``welcome``; each ``ping`` is PUBLISHed to one Redis
  channel and answered with ``pings.ack`` once Redis has it. The driver id comes from
  the query string (the relay has no sessions). With ``--database-url`` each ping is
  first INSERTed (autocommit, one row, unique on driver and device time, like
  ``LocationPing``) into a table of its own: the storage a ping costs at the least.
* ``/ws/console/``: ``welcome``; ``hello`` is answered with a ``snapshot`` of the
  latest positions this process has seen; then ``positions`` batches.

Every process subscribes to the channel and keeps the newest position per driver;
every ``--tick`` seconds it sends one ``positions`` message with the drivers that
moved to all its consoles, the same coalescing as ``apps/tracking/fanout.py`` so the
consoles receive the same shape at the same rate. Frames are not compressed
(Daphne does not negotiate permessage-deflate either).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

from redis import asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

HEARTBEAT_S = 10.0
logger = logging.getLogger("relay")


class Relay:
    def __init__(self, redis_url: str, channel: str, tick: float, database_url: str = "") -> None:
        # Publishes wait for one of a few connections (redis-py's default pool refuses past
        # its limit, and 2,000 drivers pinging at once would open 2,000 connections).
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=16, timeout=30))
        self.channel = channel
        self.tick = tick
        self.consoles: set[ServerConnection] = set()
        self.pending: dict[int, dict[str, Any]] = {}
        self.latest: dict[int, dict[str, Any]] = {}
        self.database_url = database_url
        self.db: asyncio.Queue[Any] = asyncio.Queue()

    async def open_database(self, connections: int) -> None:
        import psycopg

        for _ in range(connections):
            conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
            await self.db.put(conn)
        conn = await self.db.get()
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_relay_ping (id bigserial PRIMARY KEY, driver_id bigint, "
                           "lat double precision, lng double precision, accuracy_m double precision, "
                           "device_time timestamptz, received_at timestamptz DEFAULT now(), "
                           "UNIQUE (driver_id, device_time))")
        await self.db.put(conn)

    async def store(self, position: dict[str, Any]) -> None:
        conn = await self.db.get()
        try:
            await conn.execute("INSERT INTO bench_relay_ping (driver_id, lat, lng, accuracy_m, device_time) "
                               "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                               [position["driver_id"], position["lat"], position["lng"], position["accuracy_m"],
                                position["at"]])
        finally:
            await self.db.put(conn)

    async def handler(self, ws: ServerConnection) -> None:
        url = urlparse(ws.request.path)
        if url.path == "/ws/driver/":
            ids = parse_qs(url.query).get("driver", [])
            if not ids or not ids[0].isdigit():
                await ws.close(4403)
                return
            await self.driver(ws, int(ids[0]))
        elif url.path == "/ws/console/":
            await self.console(ws)
        else:
            await ws.close(4404)

    async def _heartbeat(self, ws: ServerConnection) -> None:
        # Daphne's consumers send one every REALTIME_HEARTBEAT_S; so do we, for parity.
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await ws.send('{"type": "heartbeat", "seq": 0}')

    async def driver(self, ws: ServerConnection, driver_id: int) -> None:
        await ws.send(json.dumps({"type": "welcome", "audience": "driver", "seq": 0, "heartbeat_s": HEARTBEAT_S}))
        heartbeat = asyncio.create_task(self._heartbeat(ws))
        try:
            async for frame in ws:
                try:
                    message = json.loads(frame)
                except ValueError:
                    continue
                if message.get("type") == "hello":
                    await ws.send('{"type": "snapshot", "seq": 0, "reason": "hello", "data": {"routes": []}}')
                elif message.get("type") == "ping":
                    ok = all(isinstance(message.get(k), int | float) for k in ("lat", "lng", "accuracy_m"))
                    if ok and isinstance(message.get("at"), str):
                        position = {"driver_id": driver_id, "lat": message["lat"], "lng": message["lng"],
                                    "accuracy_m": message["accuracy_m"], "speed_mps": message.get("speed_mps"),
                                    "heading": message.get("heading"), "at": message["at"]}
                        try:
                            if self.database_url:
                                await self.store(position)
                            await self.redis.publish(self.channel, json.dumps(position))
                        except Exception as exc:  # one line the bench can count (it reads ERROR lines)
                            logger.error("ping of driver %s failed: %r", driver_id, exc)
                            raise
                        await ws.send('{"type": "pings.ack", "accepted": 1, "duplicates": 0, "rejected": [], '
                                      '"flagged": 0}')
                    else:
                        await ws.send('{"type": "pings.ack", "accepted": 0, "duplicates": 0, '
                                      '"rejected": [{"index": 0, "code": "bad_ping"}], "flagged": 0}')
        finally:
            heartbeat.cancel()

    async def console(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "welcome", "audience": "console", "seq": 0, "heartbeat_s": HEARTBEAT_S}))
        heartbeat = asyncio.create_task(self._heartbeat(ws))
        self.consoles.add(ws)
        try:
            async for frame in ws:
                if '"hello"' in frame:
                    positions = [self.latest[d] for d in sorted(self.latest)]
                    await ws.send(json.dumps({"type": "snapshot", "seq": 0, "reason": "hello",
                                              "data": {"positions": positions}}))
        finally:
            self.consoles.discard(ws)
            heartbeat.cancel()

    async def subscribe(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            position = json.loads(message["data"])
            driver_id = position["driver_id"]
            queued = self.pending.get(driver_id)
            if queued is None or queued["at"] < position["at"]:  # same ISO format: string order is time order
                self.pending[driver_id] = position
                self.latest[driver_id] = position

    async def fan_out(self) -> None:
        next_tick = time.monotonic()
        while True:
            next_tick += self.tick
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            if not self.pending:
                continue
            batch, self.pending = self.pending, {}
            frame = json.dumps({"type": "positions", "positions": [batch[d] for d in sorted(batch)]})
            broadcast(self.consoles, frame)


async def main_async(args: argparse.Namespace) -> None:
    relay = Relay(args.redis_url, args.channel, args.tick, args.database_url)
    if args.database_url:
        await relay.open_database(args.db_connections)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    tasks = [asyncio.create_task(relay.subscribe()), asyncio.create_task(relay.fan_out())]
    async with serve(relay.handler, "127.0.0.1", args.port, compression=None, max_size=1 << 20,
                     ping_interval=20, ping_timeout=30):  # Daphne's defaults
        print(f"relay listening on 127.0.0.1:{args.port}", flush=True)
        await stop
    for task in tasks:
        task.cancel()
    await relay.redis.aclose()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", default="lastmile-bench-relay.positions")
    parser.add_argument("--database-url", default="", help="also INSERT each ping into PostgreSQL here")
    parser.add_argument("--db-connections", type=int, default=4, help="PostgreSQL connections for the INSERTs")
    parser.add_argument("--tick", type=float, default=0.1, help="seconds between position batches to consoles")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
