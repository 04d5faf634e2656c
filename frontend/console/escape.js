// Text into Leaflet's HTML strings (tooltips, divIcons): names and addresses come
// from customers and shops, never trust them as markup.

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
