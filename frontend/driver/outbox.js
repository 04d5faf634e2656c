// The outbox: every driver action is written here first and sent when the server can
// be reached, in the order the driver made them.
//
// Exactly once: each action carries the UUID generated when the driver tapped; the
// server stores the first result under it and returns it to every retry, so sending
// again after a timeout is always safe. Only one sync runs at a time (the `online`
// event and a timer would otherwise race and send the same item twice).
//
// Photos and signatures stay in IndexedDB until the server has acknowledged the
// action that uses them; each upload names its SHA-256 and the server refuses bytes
// that do not match it, so what is deleted here is exactly what the server holds.

import { csrfToken } from "../common/api.js";
import * as db from "./db.js";

export async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function newId() {
  return crypto.randomUUID();
}

// Statuses after which sending the same thing again cannot succeed: the driver must see it.
function isFinal(status) {
  return status >= 400 && status < 500 && ![401, 403, 408, 425, 429].includes(status);
}

class Retry extends Error {}
class AuthLost extends Error {}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...init });
  } catch {
    throw new Retry("offline");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // a proxy's HTML error page
  }
  if (response.ok) return body;
  if (response.status === 401 || response.status === 403) throw new AuthLost(body?.message || "Sign in again.");
  if (!isFinal(response.status)) throw new Retry(`HTTP ${response.status}`);
  const error = new Error(body?.message || `Refused (HTTP ${response.status}).`);
  error.status = response.status;
  error.body = body;
  throw error;
}

export class Outbox {
  constructor({ onChange = () => {}, onApplied = () => {}, onAuthLost = () => {} } = {}) {
    this.onChange = onChange;
    this.onApplied = onApplied;
    this.onAuthLost = onAuthLost;
    this.running = null;
    this.again = false;
    this.timer = null;
  }

  start(intervalMs = 15000) {
    window.addEventListener("online", () => this.sync());
    this.timer = setInterval(() => this.sync(), intervalMs);
    this.changed();
    this.sync();
  }

  async items() {
    return db.outboxInOrder();
  }

  async changed() {
    this.onChange(await this.items());
  }

  /** Record an action (and the images it uses) on the device, then try to send it. */
  async enqueue(action, images = []) {
    for (const image of images) {
      await db.put("blobs", { sha256: image.sha256, kind: image.kind, blob: image.blob, stop: action.stop, acked: false });
    }
    await db.put("outbox", {
      id: action.id, action, media: images.map((i) => i.sha256), createdAt: Date.now(), state: "pending", error: null,
    });
    await this.changed();
    this.sync();
  }

  /** Forget a refused action (the driver has read why). Its images go with it. */
  async dismiss(id) {
    const item = await db.get("outbox", id);
    if (!item) return;
    for (const sha of item.media) await db.remove("blobs", sha);
    await db.remove("outbox", id);
    await this.changed();
  }

  /** Send everything waiting, once at a time; a call during a run schedules one more. */
  sync() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.drain();
        } while (this.again);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async drain() {
    if (navigator.onLine === false) return;
    for (const item of await db.outboxInOrder()) {
      if (item.state !== "pending") continue;
      try {
        await this.sendMedia(item);
        const result = await send("/api/v1/driver/actions/", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify(item.action),
        });
        for (const sha of item.media) await db.remove("blobs", sha);
        await db.remove("outbox", item.id);
        await this.changed();
        this.onApplied(item.action, result);
      } catch (error) {
        if (error instanceof Retry) return; // offline or the server is struggling: try later
        if (error instanceof AuthLost) {
          this.onAuthLost(error.message);
          return;
        }
        // Refused for good: keep it (and its photos) and show the driver why.
        await db.put("outbox", { ...item, state: "rejected", error: error.message, errorBody: error.body || null });
        await this.changed();
      }
    }
  }

  async sendMedia(item) {
    for (const sha of item.media) {
      const stored = await db.get("blobs", sha);
      if (!stored) throw new Error("A photo of this action is missing from the device.");
      if (stored.acked) continue;
      const form = new FormData();
      form.append("file", stored.blob, stored.kind === "signature" ? "signature.png" : "photo.jpg");
      form.append("kind", stored.kind);
      form.append("sha256", sha);
      if (item.action.stop) form.append("stop", String(item.action.stop));
      const body = await send("/api/v1/pod/media/", {
        method: "POST", headers: { Accept: "application/json", "X-CSRFToken": csrfToken() }, body: form,
      });
      if (body?.sha256 !== sha) throw new Retry("hash mismatch");
      await db.put("blobs", { ...stored, acked: true });
    }
  }
}
