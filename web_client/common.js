// Shared by every page: session parameters from the link, and a socket that reconnects by itself.

export function sessionFromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  return { id: p.get("s"), token: p.get("t") };
}

export function wsUrl(role, session) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/${role}/${encodeURIComponent(session.id)}?token=${encodeURIComponent(session.token)}`;
}

// Close codes after which retrying cannot help (see docs/protocol.md).
const FINAL_CLOSES = new Set([4401, 4404, 4405, 4409, 1003, 1009, 1008]);
const CLOSE_TAKEN = 4409;
// The server sends a heartbeat every 250 ms: an open socket that has said nothing for this long is dead
// (a Wi-Fi to mobile handover, a NAT rebinding) even if TCP has not noticed, which can take minutes.
const SILENT_MS = 2000;

export class Link {
  // `retryTaken`: how many times a 4409 ("already has a camera") is retried before it is final. A camera
  // that reconnects at once after a network drop finds its own old socket still counted for 0.7 s.
  // `pingMs`: a `ping` at most this often, the server counting a listening phone while it hears from it
  // (the camera page shows it). Sent after the server's own messages as well as from the timer: a phone
  // runs a hidden page's timers once a minute after five minutes, but still hands it the messages.
  constructor(url, { onMessage, onOpen, onClose, binaryType = "arraybuffer", retryTaken = 0, pingMs = 0 } = {}) {
    this.url = url;
    this.onMessage = onMessage || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onClose = onClose || (() => {});
    this.binaryType = binaryType;
    this.retryTakenMax = retryTaken;
    this.retryTaken = retryTaken;
    this.delay = 250;
    this.stopped = false;
    this.ws = null;
    this.lastMessage = performance.now();
    this.pingMs = pingMs;
    this.lastPing = -Infinity;
    this.watchdog = setInterval(() => this.checkSilence(), 250);
    this.connect();
  }
  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    ws.binaryType = this.binaryType;
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 250;
      this.retryTaken = this.retryTakenMax;  // the retries are for one reconnection, not the whole session
      this.lastMessage = performance.now();
      this.onOpen();
    };
    ws.onmessage = (ev) => {
      this.lastMessage = performance.now();
      if (typeof ev.data !== "string") return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onMessage(msg);
      this.ping();
    };
    ws.onclose = (ev) => this.closed(ev);
  }
  closed(ev) {
    if (this.stopped) return;  // the page closed it: no "connection lost"
    let final = FINAL_CLOSES.has(ev.code);
    if (ev.code === CLOSE_TAKEN && this.retryTaken > 0) { this.retryTaken -= 1; final = false; }
    this.onClose(ev, final);
    if (final) { this.stopped = true; clearInterval(this.watchdog); return; }
    setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, 2000);
  }
  // A socket open but silent is given up and replaced, as if it had closed.
  checkSilence() {
    const ws = this.ws;
    if (this.stopped || !ws || ws.readyState !== WebSocket.OPEN) return;
    this.ping();
    if (performance.now() - this.lastMessage <= SILENT_MS) return;
    ws.onclose = ws.onmessage = ws.onopen = null;
    try { ws.close(4000, "no message for 2 s"); } catch (e) { /* already closing */ }
    this.closed({ code: 4000, reason: "no message from the server" });
  }
  ping() {
    const now = performance.now();
    if (!this.pingMs || !this.open || now - this.lastPing < this.pingMs) return;
    this.lastPing = now;
    this.sendJson({ type: "ping", t: now });
  }
  get open() { return this.ws && this.ws.readyState === WebSocket.OPEN; }
  send(data) { if (this.open) this.ws.send(data); }
  sendJson(obj) { this.send(JSON.stringify(obj)); }
  close() { this.stopped = true; clearInterval(this.watchdog); if (this.ws) this.ws.close(1000, "page closed"); }
}

export function $(id) { return document.getElementById(id); }

export async function keepAwake() {
  try {
    if ("wakeLock" in navigator) {
      let lock = await navigator.wakeLock.request("screen");
      document.addEventListener("visibilitychange", async () => {
        if (document.visibilityState === "visible") lock = await navigator.wakeLock.request("screen");
      });
      return true;
    }
  } catch (e) { /* refused (battery saver, insecure page): the page says so */ }
  return false;
}
