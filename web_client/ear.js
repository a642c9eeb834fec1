// What a listening device does with the server's messages, including its own watchdog: a silent
// server or network is a stop cue within one second. The server's heartbeat comes every 250 ms, so
// 800 ms is three missed in a row. The stop's sound is scheduled on the audio clock 800 ms ahead and
// pushed back by every message (CuePlayer.armSilence), so it sounds on time even when the page's timers
// do not run (a hidden or frozen page); the 100 ms tick below does the rest (the screen, the vibration,
// the browser's speech) and is the whole watchdog where the audio cannot be scheduled.

import { STOP_REPEAT_S } from "./audio.js";

const SILENCE_LIMIT_MS = 800;
const STOP_REPEAT_MS = STOP_REPEAT_S * 1000;

export class Ear {
  constructor(player, show) {
    this.player = player;
    this.show = show;  // show(state) updates the page
    this.lastHeard = null;
    this.lastLocalStop = -Infinity;
    this.watching = false;
    this.rttMs = null;
    this.onSwap = null;
    this.timer = setInterval(() => this.tick(), 100);
  }
  heard() {
    this.lastHeard = performance.now();
    // After the message is handled, and never in its way: a browser without the means to schedule the
    // stop (an old one without OfflineAudioContext) still has the timer.
    try { this.player.armSilence(SILENCE_LIMIT_MS / 1000); } catch (e) { console.warn("stop not scheduled", e); }
  }
  // Armed when the page starts listening, not at the first message: a server that never answers (hung,
  // or a network that accepts the connection and goes silent) is a stop cue too.
  start() { this.heard(); }
  onMessage(msg) {
    try { this.handle(msg); } finally { this.heard(); }
  }
  handle(msg) {
    if (msg.type === "heartbeat" && typeof msg.watching === "boolean" && msg.watching !== this.watching) {
      // A state sent while the link was down is missed (states go out on change only): the heartbeat
      // carries the server's and puts the page right, chime included.
      this.handle({ type: "state", watching: msg.watching, reason: msg.reason ?? null, path_hidden: !!msg.path_hidden });
    } else if (msg.type === "cue") {
      this.player.play(msg);
      this.show({ cue: msg });
    } else if (msg.type === "alert") {
      this.player.setAlert(msg.active);
      this.show({ active: msg.active });
    } else if (msg.type === "state") {
      if (msg.watching && !this.watching) this.player.watching();
      this.watching = msg.watching;
      if (!msg.watching) this.player.setAlert([]);
      this.show({ watching: msg.watching, reason: msg.reason, pathHidden: !!msg.path_hidden });
    } else if (msg.type === "pong" && typeof msg.t === "number") {
      this.rttMs = performance.now() - msg.t;
      this.show({ rttMs: this.rttMs });
    } else if (msg.type === "swap" && this.onSwap) {
      this.onSwap(msg.role);
    }
  }
  onClose() { this.localStop("Stop. Connection lost"); }
  // Listening ended on purpose (the workout ended, the speaker turned off): nothing more is to be heard.
  stop() {
    clearInterval(this.timer);
    this.lastHeard = null;
    this.player.disarm(true);
    this.player.setAlert([]);  // an alert's beeper would go on
  }
  localStop(text) {
    this.lastLocalStop = performance.now();
    this.watching = false;
    this.player.setAlert([]);
    const cue = { tier: "stop", kind: "connection_lost", phrase: "connection_lost", side: "centre", text, local: true };
    this.player.play(cue);
    this.show({ watching: false, reason: "connection_lost", cue });
  }
  tick() {
    if (this.lastHeard === null) return;  // not started yet
    const now = performance.now();
    if (now - this.lastHeard > SILENCE_LIMIT_MS && now - this.lastLocalStop > STOP_REPEAT_MS) {
      this.localStop("Stop. Connection lost");
    }
  }
}
