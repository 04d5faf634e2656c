// Drivers on the console map: one marker per driver with a known position, moving
// smoothly to each new position. Positions arrive about once a second per moving
// driver (docs/realtime.md), so a marker glides over ~1 s from where it is drawn to
// where the driver was last seen instead of jumping.

import * as L from "leaflet";

import { formatTime } from "../common/format.js";
import { initials, STALE_AFTER_MS } from "./drivers.js";
import { escapeHtml } from "./escape.js";

const GLIDE_MS = 1000;
// Further than this is a jump (a phone that was off, a bad fix): glide and it looks
// like the driver flew across town.
const JUMP_DEGREES = 0.05; // ~5 km

export class DriverMarkers {
  /**
   * @param {L.Map} map
   * @param {{timezone: string, onSelect?: (driverId: number) => void}} options
   */
  constructor(map, options) {
    this.map = map;
    this.options = options;
    this.layer = L.layerGroup().addTo(map);
    this.markers = new Map(); // driver id -> {marker, row, glide}
    this.frame = null;
    this.selectedId = null;
    this.focusedRouteId = null;
    this._tick = this._tick.bind(this);
  }

  /** Show every row with a position; new positions glide in. `rows` as fleetRows() makes them. */
  update(rows, now = Date.now()) {
    const seen = new Set();
    for (const row of rows) {
      if (!row.position) continue;
      const id = row.driver.id;
      seen.add(id);
      const target = L.latLng(row.position.lat, row.position.lng);
      let entry = this.markers.get(id);
      if (!entry) {
        entry = { marker: this._create(row, target), row, glide: null, target };
        this.markers.set(id, entry);
      } else {
        if (initials(entry.row.driver.name) !== initials(row.driver.name)) entry.marker.setIcon(this._icon(row));
        entry.row = row;
        if (!entry.target.equals(target)) this._glide(entry, target);
      }
      this._style(entry, now);
    }
    for (const [id, entry] of this.markers) {
      if (!seen.has(id)) {
        this.layer.removeLayer(entry.marker);
        this.markers.delete(id);
      }
    }
  }

  select(driverId) {
    if (this.selectedId !== driverId) this.markers.get(this.selectedId)?.marker.closeTooltip();
    this.selectedId = driverId;
    for (const entry of this.markers.values()) this._style(entry);
  }

  focusRoute(routeId) {
    this.focusedRouteId = routeId;
    for (const entry of this.markers.values()) this._style(entry);
  }

  /** Pan to a driver if they are off screen. */
  show(driverId) {
    const entry = this.markers.get(driverId);
    if (!entry) return;
    if (!this.map.getBounds().contains(entry.target)) this.map.panTo(entry.target);
    entry.marker.openTooltip();
  }

  bounds() {
    return L.latLngBounds([...this.markers.values()].map((e) => e.target));
  }

  _icon(row) {
    return L.divIcon({
      className: "driver-marker",
      html: `<span class="driver-pin"><span class="driver-initials">${escapeHtml(initials(row.driver.name))}</span></span>` +
        '<span class="driver-heading" aria-hidden="true"></span>',
      iconSize: [32, 32],
      iconAnchor: [16, 16],
    });
  }

  _create(row, latlng) {
    const id = row.driver.id;
    const marker = L.marker(latlng, { icon: this._icon(row), keyboard: false, zIndexOffset: 2000, riseOnHover: true })
      .bindTooltip(() => this._tooltip(id), { direction: "top", offset: [0, -16] })
      .on("click", (event) => {
        L.DomEvent.stopPropagation(event);
        this.options.onSelect?.(id);
      })
      .addTo(this.layer);
    marker.getElement().dataset.driverId = String(id);
    marker.getElement().dataset.testid = "driver-marker";
    return marker;
  }

  _tooltip(id) {
    const entry = this.markers.get(id);
    if (!entry) return "";
    const { driver, position, next, route } = entry.row;
    const lines = [`<strong>${escapeHtml(driver.name)}</strong>${driver.on_duty ? "" : " · off duty"}`];
    if (route) lines.push(`${escapeHtml(route.label)} · ${route.progress.done}/${route.progress.total} stops`);
    if (next) lines.push(`Next: stop ${next.sequence} · ${escapeHtml(next.order?.address_line1 || "")}`);
    if (position) lines.push(`Seen ${formatTime(position.at, this.options.timezone)}`);
    return lines.join("<br>");
  }

  _style(entry, now = Date.now()) {
    const element = entry.marker.getElement();
    if (!element) return;
    const { driver, position, route, color } = entry.row;
    element.style.setProperty("--driver-color", color);
    element.classList.toggle("is-off", !driver.on_duty);
    element.classList.toggle("is-stale", Boolean(position && now - new Date(position.at) > STALE_AFTER_MS));
    element.classList.toggle("is-selected", driver.id === this.selectedId);
    element.classList.toggle("is-dimmed", this.focusedRouteId != null && route?.id !== this.focusedRouteId
      && driver.id !== this.selectedId);
    const moving = position?.heading != null && (position.speed_mps ?? 0) > 0.5;
    element.classList.toggle("is-moving", moving);
    if (moving) element.style.setProperty("--heading", `${position.heading}deg`);
    entry.marker.setZIndexOffset(driver.id === this.selectedId ? 3000 : 2000);
  }

  _glide(entry, target) {
    const from = entry.marker.getLatLng();
    entry.target = target;
    const far = Math.abs(from.lat - target.lat) > JUMP_DEGREES || Math.abs(from.lng - target.lng) > JUMP_DEGREES;
    if (far || document.hidden) {
      entry.glide = null;
      entry.marker.setLatLng(target);
      entry.marker.getElement()?.classList.remove("is-gliding");
      return;
    }
    entry.glide = { from, to: target, start: performance.now() };
    entry.marker.getElement()?.classList.add("is-gliding");
    if (this.frame == null) this.frame = requestAnimationFrame(this._tick);
  }

  _tick(now) {
    let moving = false;
    for (const entry of this.markers.values()) {
      const glide = entry.glide;
      if (!glide) continue;
      const t = Math.min(1, Math.max(0, (now - glide.start) / GLIDE_MS));
      // Linear: a driver moving steadily between fixes should look steady, not eased.
      entry.marker.setLatLng([
        glide.from.lat + (glide.to.lat - glide.from.lat) * t,
        glide.from.lng + (glide.to.lng - glide.from.lng) * t,
      ]);
      if (t >= 1) {
        entry.glide = null;
        entry.marker.getElement()?.classList.remove("is-gliding");
      } else {
        moving = true;
      }
    }
    this.frame = moving ? requestAnimationFrame(this._tick) : null;
  }
}
