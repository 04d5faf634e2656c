// The driver app's service worker: keeps the app shell so /driver/ opens with no
// network. Served by Django at /driver/sw.js (apps/pod/views.py), which fills in the
// shell's URLs (production's hashed static names) and a version derived from them.
//
// Network first, cache as the fallback: online, the driver always gets the current
// app (and the cache is refreshed); offline, the last good copy. Only GET requests of
// this origin for the shell are handled; the API and the socket are never cached here:
// the app keeps its own data in IndexedDB and queues its writes in the outbox.

const SHELL = self.__SHELL__;
const VERSION = self.__VERSION__;
const CACHE = `lastmile-driver-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("lastmile-driver-") && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

function isShell(url) {
  return url.origin === self.location.origin && (SHELL.includes(url.pathname) || url.pathname === "/driver/");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return;
  const key = url.pathname === "/driver/" ? "/driver/" : url.pathname;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request);
      // A signed-out visit is redirected to the login page: keep the last good shell.
      if (response.ok && !response.redirected) await cache.put(key, response.clone());
      return response;
    } catch (error) {
      const cached = await cache.match(key);
      if (cached) return cached;
      throw error;
    }
  })());
});
