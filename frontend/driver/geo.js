// Location sharing while on duty: the phone's fixes go over the driver socket as
// `ping`s; while the socket is down they are kept in IndexedDB and sent as one HTTP
// batch (POST /api/v1/locations/) when the network is back (docs/realtime.md).

import { api } from "../common/api.js";
import * as db from "./db.js";

const MAX_BUFFERED = 5000;
const BATCH = 1000;

export function pingOf(position) {
  const c = position.coords;
  const ping = {
    lat: c.latitude, lng: c.longitude, accuracy_m: Math.max(0, c.accuracy ?? 0),
    at: new Date(position.timestamp || Date.now()).toISOString(),
  };
  if (Number.isFinite(c.speed) && c.speed >= 0) ping.speed_mps = c.speed;
  if (Number.isFinite(c.heading) && c.heading >= 0 && c.heading <= 360) ping.heading = c.heading;
  return ping;
}

export class LocationSharing {
  constructor({ send, onFix = () => {}, onBuffered = () => {} }) {
    this.send = send; // (message) => true when the socket took it
    this.onFix = onFix;
    this.onBuffered = onBuffered;
    this.watch = null;
    this.flushing = null;
    this.last = null;
    window.addEventListener("online", () => this.flush());
  }

  get active() {
    return this.watch !== null;
  }

  start() {
    if (this.watch !== null || !("geolocation" in navigator)) return;
    this.watch = navigator.geolocation.watchPosition(
      (position) => this.record(pingOf(position)),
      (error) => console.warn("geolocation:", error.message),
      { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 },
    );
  }

  stop() {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
  }

  async record(ping) {
    this.last = ping;
    this.onFix(ping);
    if (this.send({ type: "ping", ...ping })) return;
    if ((await db.count("pings")) < MAX_BUFFERED) await db.put("pings", ping);
    this.onBuffered(await db.count("pings"));
  }

  /** Send the pings kept while offline, in batches; safe to call often. */
  flush() {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      try {
        for (;;) {
          const rows = (await db.allWithKeys("pings")).slice(0, BATCH);
          if (!rows.length || navigator.onLine === false) return;
          const answer = await api("locations/", { method: "POST", body: { pings: rows.map((r) => r.value) } });
          // Everything answered for is done (accepted, duplicate or refused for good);
          // only pings over the batch limit are kept to be sent again.
          const retry = new Set((answer.rejected || []).filter((r) => r.code === "batch_limit").map((r) => r.index));
          for (const [index, row] of rows.entries()) if (!retry.has(index)) await db.remove("pings", row.key);
          this.onBuffered(await db.count("pings"));
          if (retry.size) return;
        }
      } catch (error) {
        console.warn("location backlog not sent yet:", error.message);
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }
}
