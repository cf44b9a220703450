// IndexedDB of the extension origin: the service worker's durable state.
// Content scripts cannot read it (they run in the page's origin), which
// is why the private key seed lives here and not in chrome.storage.
//
// Stores:
//   kv      settings and key material: consent, paused, backend_url,
//           seed (32 bytes), registered_key, backoff state;
//   queue   signed reports waiting to be sent (auto-increment ids keep
//           their order);
//   dedupe  "asin|marketplace|condition|price" -> last report time (ms).

const DB_NAME = "pricewatch";
const DB_VERSION = 1;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function openDb() {
  const request = indexedDB.open(DB_NAME, DB_VERSION);
  request.onupgradeneeded = () => {
    const db = request.result;
    if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv");
    if (!db.objectStoreNames.contains("queue")) db.createObjectStore("queue", { autoIncrement: true });
    if (!db.objectStoreNames.contains("dedupe")) db.createObjectStore("dedupe");
  };
  return promised(request);
}

/// Runs `body(stores)` in one transaction over `names` and resolves with
/// its result once the transaction committed.
export async function tx(names, mode, body) {
  const db = await openDb();
  try {
    const t = db.transaction(names, mode);
    const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
    const done = new Promise((resolve, reject) => {
      t.oncomplete = resolve;
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error("transaction aborted"));
    });
    const result = await body(stores, promised);
    await done;
    return result;
  } finally {
    db.close();
  }
}

export function kvGet(key) {
  return tx(["kv"], "readonly", (s, p) => p(s.kv.get(key)));
}

export function kvSet(key, value) {
  return tx(["kv"], "readwrite", (s) => {
    s.kv.put(value, key);
  });
}

export function kvDelete(key) {
  return tx(["kv"], "readwrite", (s) => {
    s.kv.delete(key);
  });
}
