// Dates and times as people read them, in the organization's time zone (not the
// browser's: a dispatcher abroad still plans in the depot's local time).

const formatters = new Map();

function formatter(timeZone, options) {
  const key = `${timeZone}|${JSON.stringify(options)}`;
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.DateTimeFormat("en-GB", { timeZone, ...options }));
  }
  return formatters.get(key);
}

/** "09:05" for an ISO date-time, "" for null. */
export function formatTime(iso, timeZone) {
  if (!iso) return "";
  return formatter(timeZone, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

/** "09:00–12:00", or "Any time" when there is no window. */
export function formatWindow(start, end, timeZone) {
  if (!start && !end) return "Any time";
  if (!end) return `from ${formatTime(start, timeZone)}`;
  if (!start) return `until ${formatTime(end, timeZone)}`;
  return `${formatTime(start, timeZone)}–${formatTime(end, timeZone)}`;
}

/** The calendar day (YYYY-MM-DD) of an ISO date-time in a time zone. */
export function dayOf(iso, timeZone) {
  const parts = formatter(timeZone, { year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date(iso));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** "Mon 23 Nov 2026" for a YYYY-MM-DD day. */
export function formatDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  return formatter("UTC", { weekday: "short", day: "numeric", month: "short", year: "numeric" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

/** The YYYY-MM-DD day `delta` days after `day`. */
export function addDays(day, delta) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + delta)).toISOString().slice(0, 10);
}

/** "1 h 25 min" / "12 min" between two ISO date-times. */
export function formatDuration(startIso, endIso) {
  if (!startIso || !endIso) return "";
  const minutes = Math.round((new Date(endIso) - new Date(startIso)) / 60000);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
