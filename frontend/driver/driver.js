// The driver app (/driver/): today's route stop by stop, offline first.
//
// Data flow: the last copy of today's routes comes from IndexedDB at once, then from
// the API when online; the driver socket (/ws/driver/) says when dispatch changed
// something, and the app re-reads the route and tells the driver what changed.
// Everything the driver does goes to the outbox (outbox.js) first and is shown as
// done straight away, with a count of what is still waiting to sync.

import { html, render, useCallback, useEffect, useMemo, useRef, useState } from "preact-htm";

import { api, csrfToken, describeError } from "../common/api.js";
import { formatTime, formatWindow } from "../common/format.js";
import { connect, liveUrl, STATUS } from "../common/live.js";
import { CompleteForm, FailForm, ruleList } from "./capture.js";
import { LocationSharing } from "./geo.js";
import { newId, Outbox, sha256Hex } from "./outbox.js";
import { RouteMap } from "./route-map.js";
import { cachedToday, describeChanges, fetchToday, withPending } from "./routes.js";

const config = JSON.parse(document.getElementById("driver-config").textContent);
const tz = config.timezone;
const REASON_LABEL = Object.fromEntries(config.failureReasons.map((r) => [r.code, r.label]));
// Events after which the driver's copy of the day may be stale.
const CHANGES = /^(route\.|stop\.(cancelled)|order\.(cancelled|unplanned|planned|dispatched|updated))/;

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/driver/sw.js", { scope: "/driver/" }).catch((error) => {
    console.warn("service worker not registered:", error.message);
  });
}

function useOnline() {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);
  return online;
}

function stopLabel(stop) {
  if (stop.state === "completed") return stop.outcome === "failed" ? "Failed" : "Delivered";
  return { pending: "To do", arrived: "Arrived", cancelled: "Cancelled" }[stop.state] || stop.state;
}

function stopClass(stop) {
  return stop.state === "completed" ? `is-${stop.outcome || "succeeded"}` : `is-${stop.state}`;
}

function navigationUrl(order) {
  // The customer's own pin, confirmed on their tracking page, beats the geocoded address.
  const prefs = order.customer_preferences;
  if (prefs?.pin_confirmed_at && prefs.pin_lat != null && prefs.pin_lng != null) {
    return `https://www.google.com/maps/dir/?api=1&destination=${prefs.pin_lat},${prefs.pin_lng}`;
  }
  if (order.lat != null && order.lng != null) {
    return `https://www.google.com/maps/dir/?api=1&destination=${order.lat},${order.lng}`;
  }
  const address = `${order.address_line1}, ${order.postal_code} ${order.city}`;
  return `https://www.google.com/maps/dir/?api=1&destination=${encodeURIComponent(address)}`;
}

function SyncPill({ online, live, waiting, rejected, buffered }) {
  let text;
  let tone;
  if (!online) {
    text = "Offline";
    tone = "offline";
  } else if (live !== STATUS.LIVE) {
    text = "Connecting…";
    tone = "connecting";
  } else {
    text = "Online";
    tone = "live";
  }
  return html`
    <div class=${`sync-pill is-${tone}`} data-testid="sync-status" role="status">
      <span class="dot" aria-hidden="true"></span>${text}
      <span class="sync-count" data-testid="pending-count" data-count=${waiting}>
        ${waiting ? ` · ${waiting} waiting to sync` : " · all synced"}</span>
      ${rejected ? html`<span class="sync-rejected"> · ${rejected} refused</span>` : null}
      ${buffered ? html`<span class="muted"> · ${buffered} locations kept</span>` : null}
    </div>`;
}

function Notices({ notices, onDismiss }) {
  if (!notices.length) return null;
  return html`
    <div class="notices" aria-live="polite">
      ${notices.map((n) => html`
        <div class=${`notice is-${n.tone || "info"}`} key=${n.id} data-testid="notice" role="status">
          <div>${n.lines.map((line) => html`<div>${line}</div>`)}</div>
          <button type="button" class="btn btn-ghost btn-small" aria-label="Dismiss" onClick=${() => onDismiss(n.id)}>×</button>
        </div>`)}
    </div>`;
}

function Refused({ items, onDismiss }) {
  const refused = items.filter((i) => i.state === "rejected");
  if (!refused.length) return null;
  return html`
    <section class="refused" data-testid="refused">
      <h3>Not accepted by the server</h3>
      ${refused.map((item) => html`
        <div class="refused-item" key=${item.id}>
          <div><strong>${item.action.type}</strong> stop ${item.action.stop}: ${item.error}</div>
          <button type="button" class="btn btn-small" onClick=${() => onDismiss(item.id)}>OK</button>
        </div>`)}
    </section>`;
}

function StopCard({ stop, rules, onOpen }) {
  const order = stop.order;
  const proof = ruleList(rules);
  return html`
    <li class=${`stop-card ${stopClass(stop)}`} data-testid="stop-card" data-stop-id=${stop.id} data-state=${stop.state}>
      <button type="button" onClick=${() => onOpen(stop.id)}>
        <span class="seq">${stop.sequence}</span>
        <span class="stop-body">
          <span class="stop-name">${order.customer_name}</span>
          <span class="stop-address">${order.address_line1}, ${order.postal_code} ${order.city}</span>
          <span class="stop-meta">${formatWindow(order.window_start, order.window_end, tz)}
            ${proof.length ? html` · <span class="needs">${proof.join(", ")}</span>` : null}</span>
        </span>
        <span class="stop-state">${stopLabel(stop)}${stop.waiting ? html`<span class="waiting" title="Waiting to sync">⟳</span>` : null}</span>
      </button>
    </li>`;
}

function StopDetail({ stop, route, rules, onBack, onArrive, onComplete, onFail }) {
  const order = stop.order;
  const open = stop.state === "pending" || stop.state === "arrived";
  const proof = ruleList(rules);
  return html`
    <section class="stop-detail" data-testid="stop-detail" data-stop-id=${stop.id}>
      <button type="button" class="btn btn-ghost back" onClick=${onBack}>‹ All stops</button>
      <div class="detail-head">
        <span class=${`seq ${stopClass(stop)}`}>${stop.sequence}</span>
        <div><h2>${order.customer_name}</h2><div class="muted">${order.reference || order.external_id} · ${route.name || ""}</div></div>
        <span class=${`state-pill ${stopClass(stop)}`} data-testid="stop-state">${stopLabel(stop)}</span>
      </div>
      <dl class="facts">
        <div><dt>Address</dt><dd>${order.address_line1}${order.address_line2 ? `, ${order.address_line2}` : ""}, ${order.postal_code} ${order.city}
          <div><a class="btn btn-small" href=${navigationUrl(order)} target="_blank" rel="noopener" data-testid="navigate">Navigate</a></div></dd></div>
        <div><dt>Window</dt><dd>${formatWindow(order.window_start, order.window_end, tz)}${stop.eta ? ` · ETA ${formatTime(stop.eta, tz)}` : ""}</dd></div>
        ${order.instructions ? html`<div><dt>Instructions</dt><dd class="instructions">${order.instructions}</dd></div>` : null}
        ${order.customer_preferences?.instructions ? html`<div><dt>Customer's note</dt><dd class="instructions" data-testid="customer-note">${order.customer_preferences.instructions}</dd></div>` : null}
        ${order.customer_preferences?.gate_code ? html`<div><dt>Gate code</dt><dd data-testid="gate-code"><strong>${order.customer_preferences.gate_code}</strong></dd></div>` : null}
        ${order.customer_preferences?.pin_confirmed_at ? html`<div><dt>Drop-off point</dt><dd data-testid="customer-pin">Confirmed by the customer on the map (Navigate goes there)</dd></div>` : null}
        ${order.customer_phone ? html`<div><dt>Contact</dt><dd><a href=${`tel:${order.customer_phone}`} data-testid="call">${order.customer_phone}</a></dd></div>` : null}
        ${order.items?.length ? html`<div><dt>Items</dt><dd><ul class="items">${order.items.map((i) => html`<li>${i.quantity} × ${i.description || i.sku}</li>`)}</ul></dd></div>` : null}
        <div><dt>Proof needed</dt><dd data-testid="proof-needed">${proof.length ? proof.join(", ") : "None"}</dd></div>
        ${stop.state === "completed" && stop.outcome === "failed" ? html`<div><dt>Reason</dt><dd>${REASON_LABEL[stop.failure_reason] || stop.failure_reason}</dd></div>` : null}
      </dl>
      ${open ? html`
        <div class="actions">
          ${stop.state === "pending" ? html`<button type="button" class="btn btn-large" onClick=${onArrive}>I have arrived</button>` : null}
          <button type="button" class="btn btn-primary btn-large" onClick=${onComplete}>Deliver</button>
          <button type="button" class="btn btn-danger btn-large" onClick=${onFail}>Could not deliver</button>
        </div>` : null}
      ${stop.waiting ? html`<p class="muted">Saved on this phone; it will be sent when you are online.</p>` : null}
    </section>`;
}

function MapView({ route, fix, onSelectStop }) {
  const element = useRef(null);
  const map = useRef(null);
  useEffect(() => {
    map.current = new RouteMap(element.current, { tileUrl: config.tileUrl, tileAttribution: config.tileAttribution, onSelectStop });
    return () => map.current.map.remove();
  }, []);
  useEffect(() => route && map.current?.show(route), [route]);
  useEffect(() => map.current?.showMe(fix), [fix]);
  return html`<div class="route-map" ref=${element} data-testid="route-map" aria-label="Map of your route"></div>`;
}

let noticeId = 0;

function signOut(waiting) {
  if (waiting && !window.confirm(`${waiting} action(s) have not been sent yet. They stay on this phone and are sent `
    + "when you sign in again. Sign out?")) return;
  // A fresh CSRF token: the page may be an older copy from the service worker.
  const form = document.getElementById("logout-form");
  form.querySelector("input[name=csrfmiddlewaretoken]").value = csrfToken();
  form.submit();
}

// The shift as this phone last knew it: the page itself may be an older copy from the
// service worker, so the newer of the two wins.
const DUTY_KEY = `lastmile-driver-duty-${config.driverId}`;

function initialDuty() {
  try {
    const stored = JSON.parse(localStorage.getItem(DUTY_KEY) || "null");
    if (stored && stored.at > config.renderedAt) return stored.onDuty;
  } catch {
    // unreadable: the page's value stands
  }
  return config.onDuty;
}

function rememberDuty(onDuty) {
  localStorage.setItem(DUTY_KEY, JSON.stringify({ onDuty, at: new Date().toISOString() }));
}

/** Where the phone is now: the last fix if recent, else one quick reading (GPS works offline). */
function currentFix(last) {
  if (last && Date.now() - new Date(last.at).getTime() < 60000) return Promise.resolve(last);
  if (!("geolocation" in navigator)) return Promise.resolve(last);
  return new Promise((resolve) => {
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude, accuracy_m: p.coords.accuracy }),
      () => resolve(last), { enableHighAccuracy: true, timeout: 5000, maximumAge: 30000 },
    );
  });
}

function App() {
  const online = useOnline();
  const [day, setDay] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [items, setItems] = useState([]);
  const [live, setLive] = useState(STATUS.CONNECTING);
  const [notices, setNotices] = useState([]);
  const [selected, setSelected] = useState(null);
  const [sheet, setSheet] = useState(null);
  const [tab, setTab] = useState("list");
  const [onDuty, setOnDuty] = useState(initialDuty);
  const [fix, setFix] = useState(null);
  const [buffered, setBuffered] = useState(0);
  const [authLost, setAuthLost] = useState(null);
  const dayRef = useRef(null);
  const liveRef = useRef(null);
  const geoRef = useRef(null);
  const outboxRef = useRef(null);

  const notify = useCallback((lines, tone = "info") => {
    if (!lines.length) return;
    setNotices((all) => [...all, { id: ++noticeId, lines, tone }]);
  }, []);
  const adopt = useCallback((next, { announce = false } = {}) => {
    if (announce) notify(describeChanges(dayRef.current, next), "change");
    dayRef.current = next;
    setDay(next);
  }, []);

  const refresh = useCallback(async ({ announce = false } = {}) => {
    if (navigator.onLine === false) return;
    try {
      adopt(await fetchToday(config.today), { announce });
      setLoadError(null);
    } catch (error) {
      setLoadError(describeError(error));
    }
  }, []);

  // Start: cached day first (opens offline), then the network, the socket, the outbox.
  useEffect(() => {
    let timer = null;
    const scheduleRefresh = () => {
      clearTimeout(timer);
      timer = setTimeout(() => refresh({ announce: true }), 300);
    };
    (async () => {
      const cached = await cachedToday(config.today);
      if (cached) adopt(cached);
      await refresh();
    })();
    const outbox = new Outbox({
      onChange: setItems,
      onApplied: (action, result) => {
        const current = dayRef.current;
        if (current && result?.stop) {
          adopt({ ...current, routes: current.routes.map((r) => ({
            ...r, stops: r.id === result.stop.route && !r.stops.some((s) => s.id === result.stop.id)
              ? [...r.stops, result.stop] : r.stops.map((s) => (s.id === result.stop.id ? result.stop : s)),
          })) });
        }
        if (result?.outcome === "exception") notify([`Sent to dispatch for review: ${result.exception.message}`], "warn");
      },
      onAuthLost: (message) => setAuthLost(message),
    });
    outboxRef.current = outbox;
    outbox.start();
    const geo = new LocationSharing({
      send: (message) => liveRef.current?.status === STATUS.LIVE && liveRef.current.send(message),
      onFix: setFix,
      onBuffered: setBuffered,
    });
    geoRef.current = geo;
    if (initialDuty()) geo.start();
    liveRef.current = connect(liveUrl("/ws/driver/"), {
      onSnapshot: () => scheduleRefresh(),
      onEvents: (events) => {
        if (events.some((e) => CHANGES.test(e.type))) scheduleRefresh();
      },
      onStatus: (status, detail) => {
        setLive(status);
        if (status === STATUS.LIVE) {
          geo.flush();
          outbox.sync();
        }
        if (status === STATUS.DENIED) setAuthLost(detail.message);
      },
    });
    return () => liveRef.current?.close();
  }, []);

  const routes = useMemo(() => (day ? withPending(day.routes, items) : []), [day, items]);
  const allStops = routes.flatMap((r) => r.stops.map((s) => ({ stop: s, route: r })));
  const current = allStops.find((x) => x.stop.id === selected);
  const waiting = items.filter((i) => i.state === "pending").length;
  const rejected = items.filter((i) => i.state === "rejected").length;

  const act = async (type, stop, route, extra = {}, images = []) => {
    const action = {
      id: newId(), type, stop: stop.id, order: stop.order.id, route: route.id,
      device_time: new Date().toISOString(), offline: navigator.onLine === false, ...extra,
    };
    await outboxRef.current.enqueue(action, images);
  };

  const toggleDuty = async () => {
    try {
      const driver = await api(`drivers/${config.driverId}/duty/`, { method: "POST", body: { on_duty: !onDuty } });
      setOnDuty(driver.on_duty);
      rememberDuty(driver.on_duty);
      if (driver.on_duty) geoRef.current.start();
      else geoRef.current.stop();
    } catch (error) {
      notify([`Could not ${onDuty ? "end" : "start"} your shift: ${describeError(error)}`], "warn");
    }
  };

  const complete = async (form) => {
    const images = [];
    for (const file of form.photos) images.push({ sha256: await sha256Hex(file), kind: "photo", blob: file });
    let signature = null;
    if (form.signature) {
      signature = await sha256Hex(form.signature);
      images.push({ sha256: signature, kind: "signature", blob: form.signature });
    }
    const pod = {
      photos: images.filter((i) => i.kind === "photo").map((i) => i.sha256),
      signature, recipient_name: form.recipient_name.trim(), pin: form.pin.trim(), barcode: form.barcode.trim(),
      age_verified: form.age_verified,
    };
    const here = await currentFix(geoRef.current?.last);
    if (here) Object.assign(pod, { lat: here.lat, lng: here.lng, accuracy_m: here.accuracy_m });
    await act("complete", current.stop, current.route, { notes: form.notes.trim(), pod }, images);
    setSheet(null);
  };

  let body;
  if (!day && loadError) {
    body = html`<div class="alert alert-error" role="alert">Could not load your route: ${loadError}
      <button type="button" class="btn btn-small" onClick=${() => refresh()}>Retry</button></div>`;
  } else if (!day) {
    body = html`<p class="driver-loading">Loading your route…</p>`;
  } else if (current && sheet === "complete") {
    body = html`<${CompleteForm} stop=${current.stop} rules=${day.rules[current.stop.id]} maxBytes=${config.maxUploadBytes}
                                  onSubmit=${complete}
                                  onCancel=${() => setSheet(null)} />`;
  } else if (current && sheet === "fail") {
    body = html`<${FailForm} stop=${current.stop} reasons=${config.failureReasons} onCancel=${() => setSheet(null)}
                             onSubmit=${async (f) => { await act("fail", current.stop, current.route, f); setSheet(null); }} />`;
  } else if (current) {
    body = html`<${StopDetail} stop=${current.stop} route=${current.route} rules=${day.rules[current.stop.id]}
                               onBack=${() => setSelected(null)}
                               onArrive=${() => act("arrive", current.stop, current.route)}
                               onComplete=${() => setSheet("complete")} onFail=${() => setSheet("fail")} />`;
  } else if (!routes.length) {
    body = html`<p class="empty" data-testid="no-route">No route for you today.</p>`;
  } else {
    const route = routes[0];
    const done = allStops.filter((x) => x.stop.state === "completed").length;
    body = html`
      <div class="tabs" role="tablist">
        <button type="button" role="tab" class=${`tab${tab === "list" ? " is-active" : ""}`} aria-selected=${tab === "list"} onClick=${() => setTab("list")}>Stops</button>
        <button type="button" role="tab" class=${`tab${tab === "map" ? " is-active" : ""}`} aria-selected=${tab === "map"} onClick=${() => setTab("map")}>Map</button>
      </div>
      <div class="progress-line">${done} of ${allStops.length} stops done</div>
      ${tab === "map"
        ? html`<${MapView} route=${route} fix=${fix} onSelectStop=${setSelected} />`
        : routes.map((r) => html`
            <section class="route" key=${r.id}>
              ${routes.length > 1 ? html`<h3>${r.name || `Route ${r.id}`}</h3>` : null}
              <ol class="stop-cards" data-testid="stop-list">
                ${[...r.stops].sort((a, b) => a.sequence - b.sequence).map((s) => html`
                  <${StopCard} key=${s.id} stop=${s} rules=${day.rules[s.id]} onOpen=${setSelected} />`)}
              </ol>
            </section>`)}`;
  }

  return html`
    <header class="driver-top">
      <div class="who"><strong>${config.driverName}</strong><span class="muted">${config.orgName}</span></div>
      <div class="top-actions">
        <button type="button" class=${`btn duty ${onDuty ? "is-on" : ""}`} data-testid="duty" onClick=${toggleDuty}>
          ${onDuty ? "End shift" : "Start shift"}</button>
        <button type="button" class="btn btn-ghost btn-small" onClick=${() => signOut(waiting)}>Sign out</button>
      </div>
    </header>
    <${SyncPill} online=${online} live=${live} waiting=${waiting} rejected=${rejected} buffered=${buffered} />
    ${authLost ? html`<div class="alert alert-error" role="alert">${authLost}
        <a href="/accounts/login/?next=/driver/">Sign in</a> (what is waiting stays on this phone)</div>` : null}
    <${Notices} notices=${notices} onDismiss=${(id) => setNotices((all) => all.filter((n) => n.id !== id))} />
    <${Refused} items=${items} onDismiss=${(id) => outboxRef.current.dismiss(id)} />
    <main class="driver-main">${body}</main>`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
