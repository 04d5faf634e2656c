// The driver app's IndexedDB: what must survive a closed tab, a dead battery and a
// day without network. Four stores:
//   outbox  driver actions waiting for the server, in the order the driver made them
//   blobs   photos and signatures by SHA-256, kept until the server has acknowledged
//           the action that uses them
//   pings   location fixes recorded while the socket was down
//   cache   the last copy of today's routes, so the app opens offline

const NAME = "lastmile-driver";
const VERSION = 1;
let opening = null;

export function openDb() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        db.createObjectStore("outbox", { keyPath: "id" }).createIndex("createdAt", "createdAt");
        db.createObjectStore("blobs", { keyPath: "sha256" });
        db.createObjectStore("pings", { autoIncrement: true });
        db.createObjectStore("cache", { keyPath: "key" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return opening;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function store(name, mode = "readonly") {
  const db = await openDb();
  return db.transaction(name, mode).objectStore(name);
}

export async function put(name, value, key) {
  return done((await store(name, "readwrite")).put(value, key));
}

export async function get(name, key) {
  return done((await store(name)).get(key));
}

export async function remove(name, key) {
  return done((await store(name, "readwrite")).delete(key));
}

export async function all(name) {
  return done((await store(name)).getAll());
}

export async function allWithKeys(name) {
  const s = await store(name);
  const [keys, values] = await Promise.all([done(s.getAllKeys()), done(s.getAll())]);
  return keys.map((key, i) => ({ key, value: values[i] }));
}

export async function count(name) {
  return done((await store(name)).count());
}

/** The outbox in the order the driver acted. */
export async function outboxInOrder() {
  const s = await store("outbox");
  return done(s.index("createdAt").getAll());
}
