// Web Push for the tracking page: show what the server sends; a tap opens the page.
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  // The tag is per message: a copy sent again after an unknown outcome replaces the
  // first instead of showing twice (docs/notifications.md).
  event.waitUntil(self.registration.showNotification(data.title || "Your delivery", {
    body: data.body || "", data: { url: data.url || "/" }, ...(data.tag ? { tag: data.tag } : {}),
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data?.url || "/"));
});
