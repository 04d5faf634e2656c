// Today's routes as the driver app holds them: fetched from the API, cached in
// IndexedDB for offline starts, overlaid with what is still in the outbox, and
// compared before/after a live change so the driver is told what dispatch changed.

import { api, apiList } from "../common/api.js";
import * as db from "./db.js";

const CACHE_KEY = "today";

export async function fetchToday(day) {
  const listed = await apiList("routes/", { params: { date: day } });
  const routes = [];
  const rules = {};
  for (const summary of listed) {
    const [route, requirements] = await Promise.all([
      api(`routes/${summary.id}/`), api("pod/requirements/", { params: { route: summary.id } }),
    ]);
    routes.push(route);
    for (const row of requirements.results) rules[row.stop] = row.rules;
  }
  routes.sort((a, b) => (a.planned_start || "").localeCompare(b.planned_start || "") || a.id - b.id);
  const data = { day, routes, rules, fetchedAt: new Date().toISOString() };
  await db.put("cache", { key: CACHE_KEY, ...data });
  return data;
}

export async function cachedToday(day) {
  const row = await db.get("cache", CACHE_KEY);
  return row && row.day === day ? row : null;
}

const OPEN = new Set(["pending", "arrived"]);

/** Stops as the driver should see them: what the server said, moved on by actions still waiting to sync. */
export function withPending(routes, outbox) {
  const byStop = new Map();
  for (const item of outbox) {
    if (item.state !== "pending") continue;
    byStop.set(item.action.stop, [...(byStop.get(item.action.stop) || []), item.action]);
  }
  return routes.map((route) => ({
    ...route,
    stops: route.stops.map((stop) => {
      const actions = byStop.get(stop.id);
      if (!actions) return stop;
      let shown = { ...stop, waiting: true };
      for (const action of actions) {
        if (action.type === "arrive" && shown.state === "pending") shown = { ...shown, state: "arrived" };
        if (action.type === "complete" && OPEN.has(shown.state)) shown = { ...shown, state: "completed", outcome: "succeeded" };
        if (action.type === "fail" && OPEN.has(shown.state)) {
          shown = { ...shown, state: "completed", outcome: "failed", failure_reason: action.reason };
        }
      }
      return shown;
    }),
  }));
}

function name(stop) {
  return stop.order?.customer_name || `stop ${stop.id}`;
}

/** What changed between two copies of the day, in words for the driver ("" if nothing they need to know). */
export function describeChanges(before, after) {
  if (!before) return [];
  const notes = [];
  const oldRoutes = new Map(before.routes.map((r) => [r.id, r]));
  for (const route of after.routes) {
    const old = oldRoutes.get(route.id);
    if (!old) {
      notes.push(`New route: ${route.name || `route ${route.id}`} (${route.stops.length} stops).`);
      continue;
    }
    const oldStops = new Map(old.stops.map((s) => [s.id, s]));
    const newIds = new Set(route.stops.map((s) => s.id));
    const added = route.stops.filter((s) => !oldStops.has(s.id));
    const removed = old.stops.filter((s) => !newIds.has(s.id) && OPEN.has(s.state));
    const cancelled = route.stops.filter((s) => s.state === "cancelled" && oldStops.get(s.id)?.state !== "cancelled");
    if (added.length) notes.push(`New ${added.length === 1 ? "stop" : "stops"}: ${added.map(name).join(", ")}.`);
    if (removed.length) notes.push(`Removed from your route: ${removed.map(name).join(", ")}.`);
    if (cancelled.length) notes.push(`Cancelled: ${cancelled.map(name).join(", ")}.`);
    const order = (stops) => stops.filter((s) => OPEN.has(s.state)).sort((a, b) => a.sequence - b.sequence).map((s) => s.id).join(",");
    const kept = (stops) => stops.filter((s) => oldStops.has(s.id) && newIds.has(s.id));
    if (!added.length && !removed.length && order(kept(old.stops)) !== order(kept(route.stops))) {
      notes.push(`Your stops were put in a new order on ${route.name || `route ${route.id}`}.`);
    }
  }
  for (const old of before.routes) {
    if (!after.routes.some((r) => r.id === old.id)) notes.push(`Route ${old.name || old.id} was taken off your day.`);
  }
  return notes;
}
