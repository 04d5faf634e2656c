// A live connection to one of Lastmile's WebSocket endpoints (docs/realtime.md),
// shared by the console and the driver app.
//
// The protocol in short: the server says `welcome` (with the log head and its
// heartbeat interval); we say `hello` with the last sequence we applied; the server
// answers with a `snapshot` (a large one in pages, assembled here) or the `events` we
// missed; live `events`, `positions` and `heartbeat`s follow. This module keeps the sequence, drops what it has already
// applied (replays and live pushes may overlap), notices a dead socket by silence,
// and reconnects with backoff. Pages only say what to do with the data.
//
//   const live = connect(liveUrl("/ws/console/"), {
//     onSnapshot(data, message) {}, onEvents(events, message) {}, onPositions(positions) {},
//     onStatus(status, detail) {},   // see STATUS below
//   });
//   live.close();

export const STATUS = {
  CONNECTING: "connecting", // first connection, nothing received yet
  LIVE: "live", // up to date and listening
  RESYNCING: "resyncing", // connected again; catching up on what was missed
  RECONNECTING: "reconnecting", // the connection dropped; trying again
  OFFLINE: "offline", // the browser is offline, or the server has been unreachable for a while
  DENIED: "denied", // the server refused us for good (signed out, no access); no retries
  CLOSED: "closed", // close() was called
};

// Close codes after which trying again cannot help (docs/realtime.md).
const FINAL_CLOSE = {
  4401: "Your session has ended. Sign in again.",
  4403: "You do not have access to live updates.",
  4404: "This link is no longer valid.",
  4408: "Your access was revoked.",
};

/** The ws: or wss: URL of `path` on this page's host. */
export function liveUrl(path) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}

/**
 * Open a live connection and keep it open until `close()`.
 *
 * @param {string} url
 * @param {{onSnapshot?: Function, onEvents?: Function, onPositions?: Function, onStatus?: Function,
 *          onMessage?: Function}} handlers
 * @param {{lastSeq?: number, baseDelayMs?: number, maxDelayMs?: number, offlineAfter?: number}} options
 *   `lastSeq`: the sequence the page's data already reflects (0: ask for a snapshot);
 *   `offlineAfter`: failed attempts in a row before the status says "offline".
 */
export function connect(url, handlers = {}, options = {}) {
  const { baseDelayMs = 1000, maxDelayMs = 30000, offlineAfter = 4 } = options;
  let lastSeq = options.lastSeq || 0;
  let socket = null;
  let status = null;
  let failures = 0; // attempts in a row that did not get us live
  let hadConnection = false;
  let catchUpTo = null; // the log head to reach before we are live again
  let silenceMs = 25000; // before the first welcome tells us the heartbeat
  let watchdog = null;
  let retryTimer = null;
  let retryAt = null;
  let closed = false;
  let paged = null; // a large snapshot being assembled: {message, data, pages, got, held}

  function setStatus(next, detail = {}) {
    status = next;
    handlers.onStatus?.(next, { retryAt, failures, ...detail });
  }

  function open() {
    clearTimeout(retryTimer);
    retryTimer = null;
    retryAt = null;
    if (closed || socket) return;
    if (navigator.onLine === false) {
      setStatus(STATUS.OFFLINE); // the "online" event brings us back
      return;
    }
    if (status !== STATUS.OFFLINE) setStatus(hadConnection || failures ? STATUS.RECONNECTING : STATUS.CONNECTING);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      console.warn("live: cannot open", url, err);
      lost(1006);
      return;
    }
    socket = ws;
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      armWatchdog();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        console.warn("live: ignoring a message that is not JSON");
        return;
      }
      receive(message);
    };
    ws.onclose = (event) => {
      if (ws === socket) lost(event.code);
    };
    ws.onerror = () => {}; // a close event follows, with its code
    armWatchdog();
  }

  // No message (not even a heartbeat) for 2.5 intervals: the socket is dead even if
  // the browser has not noticed (a half-open TCP connection after a network change).
  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      console.warn("live: no heartbeat; reconnecting");
      lost(4000);
    }, silenceMs);
  }

  function drop() {
    clearTimeout(watchdog);
    const ws = socket;
    socket = null;
    if (ws && ws.readyState <= 1) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  function lost(code) {
    drop();
    catchUpTo = null;
    paged = null;
    if (closed) return;
    if (FINAL_CLOSE[code]) {
      closed = true;
      setStatus(STATUS.DENIED, { code, message: FINAL_CLOSE[code] });
      return;
    }
    failures += 1;
    // Exponential backoff with jitter, so a server restart is not met by every
    // client at the same instant.
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (failures - 1));
    const delay = Math.round(ceiling * (0.5 + Math.random() * 0.5));
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(open, delay);
    setStatus(failures > offlineAfter || navigator.onLine === false ? STATUS.OFFLINE : STATUS.RECONNECTING, { code });
  }

  function send(message) {
    if (socket?.readyState !== 1) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  function receive(message) {
    // A large snapshot comes as a header, pages and an end (docs/realtime.md, "Large
    // snapshots"): events and heartbeats wait for it, positions need not.
    if (paged && !["snapshot.page", "snapshot.end", "positions", "revoked", "error"].includes(message.type)) {
      paged.held.push(message);
      return;
    }
    switch (message.type) {
      case "welcome":
        silenceMs = Math.max(1000, (message.heartbeat_s || 10) * 2500);
        armWatchdog();
        send({ type: "hello", last_seq: lastSeq });
        if (lastSeq === 0) {
          catchUpTo = Infinity; // until the snapshot
          setStatus(hadConnection ? STATUS.RESYNCING : STATUS.CONNECTING);
        } else if (message.seq !== lastSeq) {
          // Behind: the server replays. Ahead (the log was restored): it sends a snapshot.
          catchUpTo = message.seq > lastSeq ? message.seq : Infinity;
          setStatus(STATUS.RESYNCING);
        } else {
          catchUpTo = null;
          failures = 0;
          setStatus(STATUS.LIVE);
        }
        hadConnection = true;
        break;
      case "snapshot":
        if (message.pages) {
          paged = { message, data: { ...message.data }, pages: message.pages, got: 0, held: [] };
          break;
        }
        applySnapshot(message.data, message);
        break;
      case "snapshot.page":
        if (!paged || message.seq !== paged.message.seq || message.page !== paged.got + 1) {
          snapshotBroken();
          break;
        }
        paged.got += 1;
        for (const [key, items] of Object.entries(message.data || {})) {
          paged.data[key] = (paged.data[key] || []).concat(items);
        }
        break;
      case "snapshot.end": {
        const assembled = paged;
        paged = null;
        if (!assembled || message.seq !== assembled.message.seq || assembled.got !== assembled.pages) {
          snapshotBroken();
          break;
        }
        applySnapshot(assembled.data, assembled.message);
        for (const held of assembled.held) receive(held);
        break;
      }
      case "events": {
        const fresh = (message.events || []).filter((event) => event.seq > lastSeq);
        if (fresh.length) {
          lastSeq = fresh[fresh.length - 1].seq;
          handlers.onEvents?.(fresh, message);
        }
        caughtUp(lastSeq);
        break;
      }
      case "heartbeat":
        // The server checks the log before every heartbeat and sends what we missed
        // first, so a heartbeat at or past our target means the catch-up is done
        // (for a driver, whose stream skips other people's events, it is the only sign).
        caughtUp(message.seq);
        break;
      case "positions":
        handlers.onPositions?.(message.positions || [], message);
        break;
      case "revoked":
        closed = true;
        drop();
        setStatus(STATUS.DENIED, { code: 4408, message: message.message || FINAL_CLOSE[4408] });
        break;
      case "error":
        console.warn("live: server says", message.code, message.message);
        break;
      default:
        handlers.onMessage?.(message);
    }
  }

  function applySnapshot(data, message) {
    lastSeq = message.seq;
    handlers.onSnapshot?.(data, message);
    caughtUp(Infinity);
  }

  // Pages lost or out of order (a bug, or a proxy dropping frames): start over.
  function snapshotBroken() {
    console.warn("live: incomplete snapshot; asking for a new one");
    // What was held is older than the new snapshot will be: it supersedes it.
    paged = null;
    catchUpTo = Infinity;
    setStatus(STATUS.RESYNCING);
    send({ type: "resync", last_seq: 0 });
  }

  function caughtUp(seq) {
    if (catchUpTo == null || seq < catchUpTo) return;
    catchUpTo = null;
    // Only now does the backoff start over: a server that welcomes us and then fails
    // the catch-up (and closes) must not be hit again every second.
    failures = 0;
    setStatus(STATUS.LIVE);
  }

  const onOffline = () => {
    if (closed) return;
    drop();
    clearTimeout(retryTimer);
    retryAt = null;
    setStatus(STATUS.OFFLINE);
  };
  const onOnline = () => {
    if (closed || socket) return;
    failures = Math.min(failures, 1);
    setStatus(STATUS.RECONNECTING);
    open();
  };
  // A phone wakes up, a laptop lid opens: don't wait out a long backoff.
  const onVisible = () => {
    if (document.visibilityState === "visible" && retryTimer) open();
  };
  window.addEventListener("offline", onOffline);
  window.addEventListener("online", onOnline);
  document.addEventListener("visibilitychange", onVisible);

  open();

  return {
    /** Ask the server for everything after our last sequence (e.g. after a suspicious gap). */
    resync() {
      return send({ type: "resync", last_seq: lastSeq });
    },
    send,
    close() {
      closed = true;
      clearTimeout(retryTimer);
      drop();
      window.removeEventListener("offline", onOffline);
      window.removeEventListener("online", onOnline);
      document.removeEventListener("visibilitychange", onVisible);
      setStatus(STATUS.CLOSED);
    },
    get lastSeq() {
      return lastSeq;
    },
    get status() {
      return status;
    },
  };
}
