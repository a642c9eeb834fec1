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
const FINAL_CLOSES = new Set([4401, 4404, 4409, 1003, 1009, 1008]);

export class Link {
  constructor(url, { onMessage, onOpen, onClose, binaryType = "arraybuffer" } = {}) {
    this.url = url;
    this.onMessage = onMessage || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onClose = onClose || (() => {});
    this.binaryType = binaryType;
    this.delay = 250;
    this.stopped = false;
    this.ws = null;
    this.connect();
  }
  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    ws.binaryType = this.binaryType;
    this.ws = ws;
    ws.onopen = () => { this.delay = 250; this.onOpen(); };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      const final = FINAL_CLOSES.has(ev.code);
      this.onClose(ev, final);
      if (final) { this.stopped = true; return; }
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 2000);
    };
  }
  get open() { return this.ws && this.ws.readyState === WebSocket.OPEN; }
  send(data) { if (this.open) this.ws.send(data); }
  sendJson(obj) { this.send(JSON.stringify(obj)); }
  close() { this.stopped = true; if (this.ws) this.ws.close(1000, "page closed"); }
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
