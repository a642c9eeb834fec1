// The partner's phone: rear camera, frames downscaled to 640 px on the long side, JPEG, one frame in
// flight at a time (a new frame is sent only when the socket has drained), pose overlay and figures,
// and the walker's path as the server sees it: the corridor, how much of it the camera sees, obstacles.

const MAX_SIDE = 640;
const MAGIC = new TextEncoder().encode("RGF1");

// How much of the walker's next 3 m the camera sees. The bands are for the partner's eye only; the
// server decides when coverage is low enough to coach (status.path.coverage_low).
export function coverageLevel(coverage) {
  if (coverage == null) return "unknown";
  if (coverage >= 0.7) return "good";
  if (coverage >= 0.4) return "fair";
  return "poor";
}

// The rear camera's elevation in degrees (up positive, -90 straight down) from DeviceOrientation's beta
// and gamma, in portrait or landscape alike: the camera looks along the device's -z axis, whose upward
// component is -cos(beta) cos(gamma) with the W3C's Z-X'-Y'' angles (beta 90: the phone upright, looking
// level). The server measures the camera's height from it. null when the phone gives no angles.
export function cameraElevationDeg(beta, gamma) {
  if (beta == null || gamma == null) return null;
  const rad = Math.PI / 180;
  const up = -Math.cos(beta * rad) * Math.cos(gamma * rad);
  return Math.round((Math.asin(Math.max(-1, Math.min(1, up))) / rad) * 100) / 100;
}

const TILT_STALE_MS = 500;  // an older reading is not sent: the phone stopped reporting

export class CameraFeed {
  constructor(link, { video, overlay, onStats, fps = 15, quality = 0.7 }) {
    this.link = link;
    this.video = video;
    this.overlay = overlay;
    this.onStats = onStats || (() => {});
    this.fps = fps;
    this.quality = quality;
    this.canvas = document.createElement("canvas");
    this.seq = 0;
    this.busy = false;
    this.skipped = 0;  // frames not sent because the socket had not drained
    this.sentAt = new Map();
    this.tilt = null;  // { pitch, at }: the camera's elevation and when the phone reported it
    this.running = false;
    this.latencies = [];
    this.hazards = [];  // what is sounding now (alert messages), drawn over the view
    this.path = null;  // status.path: corridor and obstacles in pixels of the analysed frame
    this.frameWh = null;  // status.frame_wh: the size of that frame
    this.hatch = null;
    this.frameCallbacks = "requestVideoFrameCallback" in video;  // the browser says when a new frame shows
    this.fresh = !this.frameCallbacks;  // the video has shown a frame not sent yet (always, without them)
    this.presentedAt = -Infinity;  // when it last did
    this.takenAt = null;  // when the camera took that frame (performance.now() clock), when the browser says
    this.lastStatus = null;
  }
  async start() {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    this.stream = stream;
    this.video.srcObject = stream;
    await this.video.play();
    stream.getVideoTracks()[0].addEventListener("ended", () => this.onStats({ error: "camera stopped" }));
    window.addEventListener("deviceorientation", (e) => {
      const pitch = cameraElevationDeg(e.beta, e.gamma);
      this.tilt = pitch == null ? null : { pitch, at: performance.now() };
    });
    this.running = true;
    // Only new camera frames are sent: a camera slower than the send rate, or one that stopped delivering,
    // would otherwise send its last picture again and again (the server takes repeats for a frozen camera).
    if (this.frameCallbacks) {
      const onFrame = (now, meta) => {
        this.fresh = true;
        this.presentedAt = performance.now();
        // The server times each frame by its stamp (speeds come from motion between frames): the camera's
        // capture time where the browser gives it, else when the frame was presented. The send timer runs
        // out of step with the camera, so the time it fires is up to a camera frame after the picture.
        const taken = meta && Number.isFinite(meta.captureTime) ? meta.captureTime : now;
        this.takenAt = Number.isFinite(taken) ? taken : null;
        if (this.running) this.video.requestVideoFrameCallback(onFrame);
      };
      this.video.requestVideoFrameCallback(onFrame);
    }
    this.loop();
  }
  stop() {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
  }
  loop() {
    if (!this.running) return;
    setTimeout(() => this.loop(), 1000 / this.fps);
    this.capture();
  }
  capture() {
    const v = this.video;
    // A page that is not drawn (in the background) gets no frame callbacks: after 200 ms without one the
    // timer sends what the video shows (a repeat now and then from a slow camera is wasted, not harmful:
    // the server tells a repeat from a new frame).
    const waiting = !this.fresh && performance.now() - this.presentedAt < 200;
    if (!v.videoWidth || !this.link.open || waiting) return;
    if (this.busy || this.link.ws.bufferedAmount > 0) { this.skipped++; return; }
    // A frame the browser announced carries its own time; one sent without (in the background) is timed now
    const announced = this.frameCallbacks && this.fresh ? this.takenAt : null;
    this.fresh = !this.frameCallbacks;
    const scale = Math.min(1, MAX_SIDE / Math.max(v.videoWidth, v.videoHeight));
    const w = Math.round(v.videoWidth * scale), h = Math.round(v.videoHeight * scale);
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
    this.canvas.getContext("2d").drawImage(v, 0, 0, w, h);
    this.busy = true;
    const seq = ++this.seq;
    const now = performance.now();
    // The drawn frame's own time; a stamp from the future or older than a second is not believed.
    const t = announced != null && announced <= now && now - announced < 1000 ? announced : now;
    const pitch = this.tilt && now - this.tilt.at < TILT_STALE_MS ? this.tilt.pitch : null;
    this.encode().then(async (blob) => {
      this.busy = false;
      if (!blob || !this.link.open) return;
      const jpeg = new Uint8Array(await blob.arrayBuffer());
      const header = new TextEncoder().encode(JSON.stringify(pitch == null ? { seq, t } : { seq, t, pitch }));
      const msg = new Uint8Array(6 + header.length + jpeg.length);
      msg.set(MAGIC, 0);
      new DataView(msg.buffer).setUint16(4, header.length);
      msg.set(header, 6);
      msg.set(jpeg, 6 + header.length);
      this.link.send(msg);
    }, () => { this.busy = false; });
  }
  encode() {
    // Synchronous: the async encoders (toBlob, convertToBlob) were measured taking up to 1 s in
    // Chromium on a busy machine, longer than the camera-lost timeout; toDataURL takes ~5 ms at 640 px.
    const url = this.canvas.toDataURL("image/jpeg", this.quality);
    const bin = atob(url.slice(url.indexOf(",") + 1));
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return Promise.resolve(new Blob([bytes]));
  }
  onStatus(msg) {
    this.lastStatus = msg;
    if (typeof msg.capture_ms === "number") {
      this.latencies.push(performance.now() - msg.capture_ms);
      if (this.latencies.length > 30) this.latencies.shift();
    }
    const sorted = [...this.latencies].sort((a, b) => a - b);
    this.onStats({
      fps: msg.fps, dropped: msg.dropped + this.skipped, serverDropped: msg.dropped, skipped: this.skipped,
      latencyMs: sorted.length ? sorted[Math.floor(sorted.length / 2)] : null,
      poseMs: msg.timings_ms && msg.timings_ms.pose, people: msg.people, walker: !!msg.walker,
      listeners: msg.listeners,
    });
    this.path = msg.path || null;
    this.frameWh = msg.frame_wh || null;
    this.drawPose(msg.walker);
  }
  // Grey diagonal hatching: corridor the camera does not see well enough to vouch for.
  hatchPattern(g) {
    if (!this.hatch) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 12;
      const t = tile.getContext("2d");
      t.fillStyle = "rgba(128, 128, 128, 0.25)";
      t.fillRect(0, 0, 12, 12);
      t.strokeStyle = "rgba(200, 200, 200, 0.6)";
      t.lineWidth = 2;
      t.beginPath(); t.moveTo(0, 12); t.lineTo(12, 0); t.stroke();
      this.hatch = g.createPattern(tile, "repeat");
    }
    return this.hatch;
  }
  // The corridor behind the walker and the obstacles, scaled from analysed-frame pixels to the canvas
  // (the video keeps its aspect ratio, so one scale per axis maps both).
  drawPath(g, c) {
    const p = this.path;
    if (!p || !this.frameWh || !this.frameWh[0] || !this.frameWh[1]) return;
    const sx = c.width / this.frameWh[0], sy = c.height / this.frameWh[1];
    const level = coverageLevel(p.coverage);
    if (p.corridor_px && p.corridor_px.length >= 3) {
      g.beginPath();
      p.corridor_px.forEach(([u, v], i) => (i ? g.lineTo(u * sx, v * sy) : g.moveTo(u * sx, v * sy)));
      g.closePath();
      const good = level === "good";
      g.fillStyle = good ? "rgba(40, 190, 100, 0.25)" : this.hatchPattern(g);
      g.fill();
      g.strokeStyle = good ? "#2b6" : "#aaa";
      g.lineWidth = 2;
      g.setLineDash(good ? [] : [6, 4]);
      g.stroke();
      g.setLineDash([]);
    }
    const colour = (o) => (o.ttc_s != null && o.ttc_s <= 1 ? "#f22" : o.ttc_s != null && o.ttc_s <= 1.5 ? "#f80"
      : o.ttc_s != null && o.ttc_s <= 3 ? "#fb0" : o.in_corridor ? "#fff" : "#bbb");
    g.font = "bold 13px system-ui";
    for (const o of p.obstacles || []) {
      if (!o.box_px) continue;
      const [u0, v0, u1, v1] = o.box_px;
      g.strokeStyle = g.fillStyle = colour(o);
      g.lineWidth = o.in_corridor ? 3 : 1.5;
      g.strokeRect(u0 * sx, v0 * sy, (u1 - u0) * sx, (v1 - v0) * sy);
      const label = `${o.kind}${o.distance_m != null ? " " + o.distance_m.toFixed(1) + " m" : ""}`
        + `${o.ttc_s != null ? " · " + o.ttc_s.toFixed(1) + " s" : ""}`;
      g.fillText(label, Math.max(2, Math.min(u0 * sx, c.width - g.measureText(label).width - 2)), Math.max(14, v0 * sy - 4));
    }
  }
  // Hazards as the partner sees them: the walker faces the camera, so the walker's left is the image's
  // right. A band on that edge in the tier's colour, with the kind and time to contact.
  drawHazards(g, c) {
    const colour = { advisory: "#fb0", urgent: "#f80", stop: "#f22" };
    for (const h of this.hazards) {
      if (["walker_lost", "camera_lost", "connection_lost"].includes(h.kind)) continue;
      const w = Math.round(c.width * 0.12);
      const x = h.side === "left" ? c.width - w : h.side === "right" ? 0 : Math.round((c.width - w) / 2);
      g.fillStyle = colour[h.tier] || "#fb0";
      g.globalAlpha = 0.45;
      g.fillRect(x, h.side === "centre" ? c.height - 40 : 0, w, h.side === "centre" ? 40 : c.height);
      g.globalAlpha = 1;
      g.fillStyle = "#fff";
      g.font = "bold 14px system-ui";
      const label = `${h.kind}${h.ttc_s != null ? " " + h.ttc_s.toFixed(1) + " s" : ""}`;
      g.fillText(label, Math.max(4, Math.min(x + 4, c.width - g.measureText(label).width - 4)), c.height - 48);
    }
  }
  setHazards(active) {
    this.hazards = active || [];
    this.drawPose(this.lastWalker);
  }
  drawPose(walker) {
    this.lastWalker = walker;
    const c = this.overlay;
    if (!c) return;
    const r = this.video.getBoundingClientRect();
    if (c.width !== Math.round(r.width) || c.height !== Math.round(r.height)) {
      c.width = Math.round(r.width); c.height = Math.round(r.height);
    }
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    this.drawPath(g, c);
    this.drawHazards(g, c);
    if (!walker) return;
    const bones = [[11, 12], [11, 13], [13, 15], [12, 14], [14, 16], [11, 23], [12, 24], [23, 24],
      [23, 25], [25, 27], [24, 26], [26, 28], [27, 29], [28, 30], [29, 31], [30, 32]];
    g.strokeStyle = "#3f3"; g.lineWidth = 3;
    for (const [a, b] of bones) {
      if (walker.vis[a] < 0.5 || walker.vis[b] < 0.5) continue;
      g.beginPath();
      g.moveTo(walker.xy[a][0] * c.width, walker.xy[a][1] * c.height);
      g.lineTo(walker.xy[b][0] * c.width, walker.xy[b][1] * c.height);
      g.stroke();
    }
  }
}
