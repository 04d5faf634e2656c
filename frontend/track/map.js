// The tracking page's map: the customer's own address (draggable while they may still
// confirm their pin) and, only when the server sends it, the driver's position.
// Without MAP_TILE_URL it draws on a plain background and requests nothing elsewhere.

import * as L from "leaflet";

const dot = (cls) => L.divIcon({ className: `track-dot ${cls}`, iconSize: [18, 18], iconAnchor: [9, 9] });

export class TrackMap {
  constructor(element, { tileUrl, tileAttribution }) {
    this.map = L.map(element, { zoomControl: true, attributionControl: Boolean(tileUrl), center: [52.52, 13.4], zoom: 13 });
    if (tileUrl) L.tileLayer(tileUrl, { attribution: tileAttribution || "", maxZoom: 19 }).addTo(this.map);
    this.home = null;
    this.driver = null;
    this.fitted = false;
  }

  setHome(lat, lng, { draggable, onMove }) {
    if (lat == null || lng == null) return;
    if (!this.home) {
      this.home = L.marker([lat, lng], { icon: dot("track-dot-home"), draggable, title: "Your address" }).addTo(this.map);
      this.home.on("dragend", () => {
        const p = this.home.getLatLng();
        onMove?.(p.lat, p.lng);
      });
      this.map.setView([lat, lng], 15);
    } else if (!this.dragged) {
      this.home.setLatLng([lat, lng]);
    }
    if (this.home.dragging) draggable ? this.home.dragging.enable() : this.home.dragging.disable();
  }

  markDragged() {
    this.dragged = true;
  }

  setDriver(position) {
    if (!position) {
      if (this.driver) {
        this.driver.remove();
        this.driver = null;
      }
      return;
    }
    if (!this.driver) {
      this.driver = L.marker([position.lat, position.lng], { icon: dot("track-dot-driver"), title: "Your driver" })
        .addTo(this.map);
      this.driver.getElement()?.setAttribute("data-testid", "driver-marker");
    } else {
      this.driver.setLatLng([position.lat, position.lng]);
    }
    this.driver.getElement()?.setAttribute("data-lat", String(position.lat));
    this.driver.getElement()?.setAttribute("data-lng", String(position.lng));
    if (!this.fitted && this.home) {
      this.map.fitBounds(L.latLngBounds([this.home.getLatLng(), this.driver.getLatLng()]).pad(0.3));
      this.fitted = true;
    }
  }
}
