// The console's state: the day on screen, the drivers and where they were last seen,
// the event feed and the live connection's status. It loads a day over REST; for
// today it also keeps up over /ws/console/ (docs/realtime.md): the socket's snapshot
// replaces the day's routes, then events patch them (events.js) and positions move
// the drivers. Other days are a static picture.

import { api, apiList } from "../common/api.js";
import { connect, liveUrl } from "../common/live.js";
import { applyEvents } from "./events.js";
import { addToFeed, describeEvent, feedContext } from "./feed.js";
import { buildDay, loadBacklog, loadRoute, loadSnapshot, updateDay } from "./snapshot.js";

// How many past events the feed shows when the console opens.
const FEED_HISTORY = 50;
// Re-reads triggered by events wait this long, so a burst costs one request.
const REFETCH_DELAY_MS = 250;

export class ConsoleStore {
  constructor({ today }) {
    this.today = today;
    this.state = {
      date: null,
      day: null,
      loading: true,
      error: null,
      drivers: [],
      positions: new Map(),
      feed: [],
      live: { status: "idle" },
    };
    this.listeners = new Set();
    this.live = null;
    this.controller = null;
    this.liveRoutesFor = null; // the date whose routes came from the socket
    this.routeGen = new Map(); // route id -> changes seen; a fetch started before the latest is stale
    this.timers = new Map();
    this.feedPrimed = false;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  _set(patch) {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener(this.state);
  }

  /** Show `date`: load it over REST and, for today, go live. */
  setDate(date) {
    this.controller?.abort();
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.routeGen.clear();
    this._set({ date, loading: true, error: null });
    if (date === this.today) this._startLive();
    else this._stopLive();

    loadSnapshot(date, { signal })
      .then((day) => {
        if (this.state.date !== date) return;
        // Routes from the socket are at a known sequence; keep them over REST's.
        const fresh = this.liveRoutesFor === date && this.state.day?.date === date
          ? updateDay(day, { routes: this.state.day.routes })
          : day;
        this._set({ day: fresh, loading: false });
      })
      .catch((error) => {
        if (error.name === "AbortError") return;
        console.error(error);
        this._set({ error, loading: false });
      });
    apiList("drivers/", { signal })
      .then((drivers) => {
        // The socket's list, when there is one, is as of its snapshot and kept up by events.
        if (this.state.date === date && this.liveRoutesFor !== date) this._set({ drivers: drivers.filter((d) => d.active) });
      })
      .catch((error) => error.name !== "AbortError" && console.warn("drivers", error));
  }

  reload() {
    this.setDate(this.state.date);
  }

  _startLive() {
    if (this.live) return;
    this.feedPrimed = false;
    this.live = connect(liveUrl("/ws/console/"), {
      onSnapshot: (data, message) => this._onSnapshot(data, message),
      onEvents: (events) => this._onEvents(events),
      onPositions: (positions) => this._onPositions(positions),
      onMessage: (message) => {
        if (message.type === "etas") this._onEtas(message);
      },
      onStatus: (status, detail) => this._set({ live: { status, ...detail } }),
    });
  }

  _stopLive() {
    if (!this.live) return;
    this.live.close();
    this.live = null;
    this.liveRoutesFor = null;
    this._set({ live: { status: "idle" }, positions: new Map(), feed: [] });
  }

  _onSnapshot(data, message) {
    const { date } = this.state;
    // A live position may have come in while the snapshot was on its way: keep the newer.
    const positions = mergePositions(new Map(this.state.positions), data.positions || []);
    const patch = { drivers: data.drivers || [], positions };
    if (data.date === date) {
      this.liveRoutesFor = date;
      for (const id of this.routeGen.keys()) this._bump(id);
      patch.day = this.state.day?.date === date
        ? updateDay(this.state.day, { routes: data.routes })
        : buildDay({ date, hubs: [], routes: data.routes, backlog: [] });
    }
    this._set(patch);
    if (!this.feedPrimed) {
      this.feedPrimed = true;
      this._primeFeed(message.seq);
    } else {
      // A snapshot after a resync: the backlog may have moved too.
      this._schedule("backlog", () => this._refetchBacklog());
    }
  }

  // The feed starts with the last few events, so it is not empty until something happens.
  async _primeFeed(seq) {
    if (!seq) return;
    try {
      const page = await api("events/", { params: { after: Math.max(0, seq - FEED_HISTORY), limit: FEED_HISTORY } });
      const ctx = feedContext(this.state.day, this.state.drivers);
      const lines = page.results
        .filter((e) => e.sequence <= seq)
        .map((e) => describeEvent({ seq: e.sequence, type: e.type, subject_type: e.subject_type, subject_id: e.subject_id,
          payload: e.payload, at: e.created_at }, ctx));
      this._set({ feed: addToFeed(this.state.feed, lines) });
    } catch (error) {
      console.warn("feed history", error);
    }
  }

  _onEvents(events) {
    const { day, drivers } = this.state;
    // Describe first: a deleted route's name is only known before it is removed.
    const ctx = feedContext(day, drivers);
    const lines = events.map((event) => describeEvent(event, ctx)).filter(Boolean).map((line) => ({ ...line, live: true }));
    const result = applyEvents(day?.date === this.state.date ? day : null, drivers, events);
    for (const id of result.touched) this._bump(id);
    for (const id of result.routes) this._schedule(`route:${id}`, () => this._refetchRoute(id));
    if (result.backlog) this._schedule("backlog", () => this._refetchBacklog());
    if (result.refetchDrivers) this._schedule("drivers", () => this._refetchDrivers());
    if (result.hubs) this._schedule("hubs", () => this._refetchHubs());
    this._set({
      day: result.day || day,
      drivers: result.drivers,
      feed: addToFeed(this.state.feed, lines),
    });
  }

  _onPositions(positions) {
    this._set({ positions: mergePositions(new Map(this.state.positions), positions) });
    if (positions.some((p) => !this.state.drivers.some((d) => d.id === p.driver_id))) {
      this._schedule("drivers", () => this._refetchDrivers()); // someone new: learn their name
    }
  }

  // The ETA engine's new ETAs for one route (docs/eta.md): moved in place, no refetch.
  _onEtas(message) {
    const { day } = this.state;
    const route = day?.routes.find((r) => r.id === message.route_id);
    if (!route) return;
    const byStop = new Map(message.etas.map((e) => [e.stop_id, e]));
    const stops = route.stops.map((s) => {
      const update = byStop.get(s.id);
      return update ? { ...s, eta: update.eta, late_risk: update.late_risk } : s;
    });
    const routes = day.routes.map((r) => (r.id === route.id ? { ...r, stops } : r));
    this._set({ day: updateDay(day, { routes }) });
  }

  _bump(routeId) {
    this.routeGen.set(routeId, (this.routeGen.get(routeId) || 0) + 1);
  }

  _schedule(key, run) {
    if (this.timers.has(key)) return;
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      run();
    }, REFETCH_DELAY_MS));
  }

  async _refetchRoute(routeId) {
    const { date } = this.state;
    const gen = this.routeGen.get(routeId) || 0;
    let route = null;
    try {
      route = await loadRoute(routeId);
    } catch (error) {
      if (error.status !== 404) {
        console.warn("route", routeId, error);
        return;
      }
    }
    const { day } = this.state;
    if (this.state.date !== date || day?.date !== date) return;
    if ((this.routeGen.get(routeId) || 0) !== gen) {
      // Events about this route arrived while we were reading it: read it again.
      this._schedule(`route:${routeId}`, () => this._refetchRoute(routeId));
      return;
    }
    const others = day.routes.filter((r) => r.id !== routeId);
    const routes = route && route.date === date ? [...others, route] : others;
    this._set({ day: updateDay(day, { routes }) });
  }

  async _refetchBacklog() {
    const { date } = this.state;
    try {
      const backlog = await loadBacklog();
      if (this.state.date === date && this.state.day) {
        this._set({ day: updateDay(this.state.day, { backlog, backlogTruncated: Boolean(backlog.truncated) }) });
      }
    } catch (error) {
      console.warn("backlog", error);
    }
  }

  async _refetchDrivers() {
    try {
      const drivers = await apiList("drivers/");
      this._set({ drivers: drivers.filter((d) => d.active) });
    } catch (error) {
      console.warn("drivers", error);
    }
  }

  async _refetchHubs() {
    try {
      const hubs = await apiList("hubs/");
      if (this.state.day) this._set({ day: updateDay(this.state.day, { hubs }) });
    } catch (error) {
      console.warn("hubs", error);
    }
  }
}

// Each driver's newest position by device time: batches can overlap a snapshot.
function mergePositions(into, positions) {
  for (const position of positions) {
    const known = into.get(position.driver_id);
    if (!known || new Date(position.at) >= new Date(known.at)) into.set(position.driver_id, position);
  }
  return into;
}
