// How report figures read: counts with thousands separators, rates as percentages,
// durations in minutes. A figure that does not apply (no attempts, a partner's route
// figures) is an em dash, never 0 or NaN.

const counts = new Intl.NumberFormat("en-GB");
const decimals = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });

export const DASH = "—";

export function count(value) {
  return value === null || value === undefined ? DASH : counts.format(value);
}

export function rate(value) {
  return value === null || value === undefined ? DASH : `${decimals.format(value * 100)} %`;
}

export function number(value, unit = "") {
  return value === null || value === undefined ? DASH : `${decimals.format(value)}${unit ? ` ${unit}` : ""}`;
}

export function minutes(seconds) {
  return seconds === null || seconds === undefined ? DASH : `${decimals.format(seconds / 60)} min`;
}

export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** The ISO day `days` before `iso` (both YYYY-MM-DD). */
export function daysBefore(iso, days) {
  const d = new Date(`${iso}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - days);
  return isoDay(d);
}
