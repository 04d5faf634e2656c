// The customer's tracking page. The snapshot and live updates come over
// /ws/track/<token>/ (common/live.js); the customer's own actions (delivery
// instructions, pin, rating, notifications) go to /api/v1/track/<token>/...
// What the server sends is already privacy-graded (docs/tracking.md): this page only
// shows it.

import { html, render, useEffect, useRef, useState } from "preact-htm";

import { formatTime } from "../common/format.js";
import { connect, liveUrl, STATUS } from "../common/live.js";
import { TrackMap } from "./map.js";
import { applyDelivery, applyEvents, FAILURE_TEXT, isFinished } from "./state.js";

const config = JSON.parse(document.getElementById("track-config").textContent);
const api = `/api/v1/track/${encodeURIComponent(config.token)}/`;
const tz = config.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone;

async function call(method, path, body) {
  const response = await fetch(api + path, {
    method, headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.message || "Something went wrong."), { data });
  return data;
}

function Headline({ state }) {
  const { order, delivery } = state;
  if (order.state === "completed" && order.outcome === "delivered") {
    return html`<h1 data-testid="headline">Delivered${order.completed_at ? ` at ${formatTime(order.completed_at, tz)}` : ""}</h1>`;
  }
  if (order.state === "completed") {
    return html`<h1 data-testid="headline">We could not deliver today</h1>
      <p>${FAILURE_TEXT[order.failure_reason] || FAILURE_TEXT.other} We will be in touch to arrange another attempt.</p>`;
  }
  if (order.state === "cancelled") return html`<h1 data-testid="headline">This delivery was cancelled</h1>`;
  if (delivery?.eta) {
    return html`<h1 data-testid="headline">Arriving <span data-testid="eta-window">${formatTime(delivery.window_from, tz)}–${formatTime(delivery.window_to, tz)}</span></h1>
      <p class="muted">Estimated <span data-testid="eta" data-eta=${delivery.eta}>${formatTime(delivery.eta, tz)}</span>${
        delivery.stops_away === 0 ? " · you are next" : delivery.stops_away != null ? ` · ${delivery.stops_away} stop${delivery.stops_away === 1 ? "" : "s"} before yours` : ""}</p>
      ${delivery.late_risk ? html`<p class="track-warn">Running later than your delivery window. Sorry for the wait.</p>` : null}`;
  }
  if (order.window_start) {
    return html`<h1 data-testid="headline">Scheduled ${formatTime(order.window_start, tz)}–${formatTime(order.window_end, tz)}</h1>`;
  }
  return html`<h1 data-testid="headline">Your order is being prepared</h1>`;
}

function Timeline({ steps }) {
  return html`<ol class="track-timeline" data-testid="timeline">
    ${steps.map((s) => html`<li class=${s.done ? "done" : ""}><span class="dot"></span><span>${s.label}</span>
      <span class="muted">${s.at ? formatTime(s.at, tz) : ""}</span></li>`)}
  </ol>`;
}

function Driver({ delivery }) {
  if (!delivery?.driver) return null;
  return html`<p class="track-driver" data-testid="driver">Your driver today: <b>${delivery.driver.first_name}</b>
    ${delivery.driver.position ? html` <span class="muted">· on the map</span>` : null}</p>`;
}

function Preferences({ state, pin, onSaved }) {
  const prefs = state.preferences;
  const [instructions, setInstructions] = useState(prefs.instructions);
  const [gate, setGate] = useState(prefs.gate_code);
  const [message, setMessage] = useState(null);
  if (!prefs.editable) {
    if (!prefs.instructions && !prefs.gate_code) return null;
    return html`<section class="track-card"><h2>Your delivery notes</h2><p>${prefs.instructions}</p>
      ${prefs.gate_code ? html`<p class="muted">Gate code given to the driver.</p>` : null}</section>`;
  }
  async function save(event) {
    event.preventDefault();
    try {
      const body = { instructions, gate_code: gate };
      // The pin the customer dragged, or, the first time, the address's own pin as it stands.
      const confirm = pin || (!prefs.pin_confirmed_at && state.order.lat != null
        ? { lat: state.order.lat, lng: state.order.lng } : null);
      if (confirm) body.pin = { lat: confirm.lat, lng: confirm.lng };
      onSaved(await call("PUT", "preferences/", body));
      setMessage("Saved. Your driver will see this.");
    } catch (err) {
      setMessage(err.message);
    }
  }
  return html`<section class="track-card"><h2>Help your driver</h2>
    <form onSubmit=${save} data-testid="preferences">
      <label class="field"><span>Delivery instructions</span>
        <textarea maxlength="500" value=${instructions} onInput=${(e) => setInstructions(e.target.value)}
          placeholder="e.g. Back door, ring twice"></textarea></label>
      <label class="field"><span>Gate or door code</span>
        <input maxlength="32" value=${gate} onInput=${(e) => setGate(e.target.value)} autocomplete="off" /></label>
      <p class="muted">${pin ? "New pin placed: it will be saved with your notes." : prefs.pin_confirmed_at ? "Pin confirmed." : "Drag the pin on the map to your door, then save."}</p>
      <button class="btn btn-primary btn-block" type="submit">Save${pin || !prefs.pin_confirmed_at ? " and confirm pin" : ""}</button>
      ${message ? html`<p class="muted" role="status">${message}</p>` : null}
    </form></section>`;
}

function Rating({ state, onRated }) {
  const [comment, setComment] = useState("");
  const [error, setError] = useState(null);
  if (state.rating) return html`<section class="track-card"><p>Thank you for your rating (${state.rating.score}/5).</p></section>`;
  if (!state.can_rate) return null;
  async function rate(score) {
    try {
      onRated(await call("POST", "rating/", { score, comment }));
    } catch (err) {
      setError(err.message);
    }
  }
  return html`<section class="track-card" data-testid="rating"><h2>How did we do?</h2>
    <div class="track-stars">${[1, 2, 3, 4, 5].map((n) => html`<button type="button" class="btn" aria-label=${`${n} of 5`} onClick=${() => rate(n)}>${"★".repeat(n)}</button>`)}</div>
    <label class="field"><span>Comment (optional, before you tap)</span>
      <textarea maxlength="1000" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea></label>
    ${error ? html`<p class="text-failed">${error}</p>` : null}</section>`;
}

function PushOptIn({ state }) {
  const [status, setStatus] = useState(null);
  if (!config.vapidPublicKey || !("serviceWorker" in navigator) || !("PushManager" in window) || isFinished(state)) return null;
  async function optIn() {
    try {
      const registration = await navigator.serviceWorker.register(config.serviceWorkerUrl || "/static/track/sw.js");
      const key = Uint8Array.from(atob(config.vapidPublicKey.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      await call("POST", "push/", subscription.toJSON());
      setStatus("You will get updates on this device.");
    } catch (err) {
      setStatus(err.message || "Notifications are not available.");
    }
  }
  return html`<section class="track-card"><button class="btn btn-block" type="button" onClick=${optIn}>Notify me on this device</button>
    ${status ? html`<p class="muted">${status}</p>` : null}</section>`;
}

function App() {
  const [state, setState] = useState(null);
  const [live, setLive] = useState(STATUS.CONNECTING);
  const [denied, setDenied] = useState(null);
  const [pin, setPin] = useState(null);
  const mapEl = useRef(null);
  const map = useRef(null);

  useEffect(() => {
    const connection = connect(liveUrl(`/ws/track/${encodeURIComponent(config.token)}/`), {
      onSnapshot: (data) => setState(data),
      onEvents: (events) => setState((s) => (s ? applyEvents(s, events) : s)),
      onMessage: (message) => {
        if (message.type === "delivery") setState((s) => applyDelivery(s, message.delivery));
      },
      onStatus: (status, detail) => {
        setLive(status);
        if (status === STATUS.DENIED) setDenied(detail.message);
      },
    });
    return () => connection.close();
  }, []);

  // After delivery or a failed attempt, the page reloads its snapshot (POD, rating).
  useEffect(() => {
    if (state?.needsRefresh) call("GET", "").then(setState).catch(() => {});
  }, [state?.needsRefresh]);

  useEffect(() => {
    if (!state || !mapEl.current) return;
    if (!map.current) map.current = new TrackMap(mapEl.current, config);
    const prefs = state.preferences;
    map.current.setHome(prefs.pin_lat ?? state.order.lat, prefs.pin_lng ?? state.order.lng, {
      draggable: prefs.editable,
      onMove: (lat, lng) => { map.current.markDragged(); setPin({ lat, lng }); },
    });
    map.current.setDriver(isFinished(state) ? null : state.delivery?.driver?.position || null);
  }, [state]);

  if (denied) return html`<section class="track-card"><h1>Link no longer valid</h1><p class="muted">${denied}</p></section>`;
  if (!state) return html`<p class="muted">Loading your delivery…</p>`;
  return html`
    <section class="track-card track-hero"><${Headline} state=${state} /><${Driver} delivery=${state.delivery} />
      <p class="track-live muted" data-testid="live-status" data-status=${live}>${live === STATUS.LIVE ? "Live" : live === STATUS.OFFLINE ? "Offline" : "Connecting…"}</p></section>
    <div class="track-map" ref=${mapEl} data-testid="map"></div>
    <p class="track-legend"><span><i style="background: var(--brand)"></i>Your address</span>
      ${state.delivery?.driver?.position ? html`<span><i style="background: #111827"></i>${state.delivery.driver.first_name}</span>` : null}</p>
    ${state.pod_url ? html`<section class="track-card"><h2>Proof of delivery</h2><img class="track-pod" src=${state.pod_url} alt="Proof of delivery" referrerpolicy="no-referrer" /></section>` : null}
    <${Rating} state=${state} onRated=${(rating) => setState((s) => ({ ...s, rating, can_rate: false }))} />
    <${Preferences} state=${state} pin=${pin} onSaved=${(preferences) => { setPin(null); setState((s) => ({ ...s, preferences })); }} />
    <${PushOptIn} state=${state} />
    <section class="track-card"><h2>Order ${state.order.reference}</h2><p class="muted">${state.order.address}</p>
      <${Timeline} steps=${state.timeline} /></section>`;
}

render(html`<${App} />`, document.getElementById("app"));
