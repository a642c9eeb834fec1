// The walker's ears: tones panned to the hazard's side, pre-rendered speech (or the browser's own),
// vibration, and a parking-sensor beeper whose cadence follows the top hazard's time to contact.

const PAN = { left: -0.8, centre: 0, right: 0.8 };
const RANK = { advisory: 0, urgent: 1, stop: 2 };
export const BLIND_KINDS = new Set(["walker_lost", "camera_lost", "connection_lost"]);
const VIBRATE = { advisory: [80], urgent: [120, 60, 120], stop: [300, 100, 300, 100, 300] };

// `coachVoice`: the camera page speaks its coaching to the partner (see camera.html).
export const DEFAULT_SETTINGS = { volume: 1, tones: true, speech: true, vibration: true, voice: "rendered", sensitivity: "normal", coachVoice: true, heightCm: null };

export function loadSettings() {
  try { return { ...DEFAULT_SETTINGS, ...JSON.parse(localStorage.getItem("rearguard.settings") || "{}") }; }
  catch { return { ...DEFAULT_SETTINGS }; }
}
export function saveSettings(s) { localStorage.setItem("rearguard.settings", JSON.stringify(s)); }

// Seconds between beeps for a time to contact: a parking sensor's quickening, continuous at the last tier.
export function beepInterval(ttc) {
  if (ttc == null) return 0.5;
  return Math.min(0.9, Math.max(0.15, 0.1 + 0.25 * ttc));
}

export class CuePlayer {
  constructor(settings = loadSettings()) {
    this.ctx = null;
    this.settings = settings;
    this.buffers = new Map();  // phrase id -> AudioBuffer, fetched once and kept
    this.phraseText = new Map();
    this.played = [];
    this.onPlayed = () => {};
    this.alert = null;  // the hazard the beeper follows
    this.nextBeep = 0;
    this.tone_ = null;  // the continuous tone of the last tier, while it lasts
    this.speaking = null;
    this.lastCueAt = -Infinity;  // performance.now() of the last warning played
    this.onAudioState = () => {};  // told when the audio stops or starts again (the page shows it)
    this.beeper = setInterval(() => this.tick(), 25);
  }
  // A phone call, Siri or an alarm suspends (iOS: interrupts) the audio, and every tone then goes into a
  // stopped context: the page must know, try to resume, and ask for a tap if it cannot.
  get audioRunning() { return !!this.ctx && this.ctx.state === "running"; }
  checkAudio() {
    if (!this.ctx) return;
    if (this.ctx.state !== "running" && this.ctx.state !== "closed") this.ctx.resume().catch(() => {});
    this.onAudioState(this.ctx.state);
  }
  // Must run inside a user gesture: phone browsers keep audio locked until then.
  unlock() {
    if (!this.ctx) {
      this.ctx = new (window.AudioContext || window.webkitAudioContext)();
      this.ctx.onstatechange = () => this.checkAudio();
      // iOS: play through the ring/silent switch, as a media app does (where the browser supports it)
      if (navigator.audioSession) { try { navigator.audioSession.type = "playback"; } catch (e) { /* older */ } }
      this.loadPhrases();
    }
    if (this.ctx.state !== "running") this.ctx.resume().catch(() => {});
    if ("speechSynthesis" in window) {
      const u = new SpeechSynthesisUtterance(" ");
      u.volume = 0;
      speechSynthesis.speak(u);
    }
    return this.ctx;
  }
  async loadPhrases() {
    try {
      const manifest = await (await fetch("/api/phrases")).json();
      for (const [id, p] of Object.entries(manifest.phrases)) this.phraseText.set(id, p.text);
      if (!manifest.rendered) return;
      // The URLs carry a hash of the text and are cached for good by the browser.
      await Promise.all(Object.entries(manifest.phrases).map(async ([id, p]) => {
        const data = await (await fetch(p.url)).arrayBuffer();
        this.buffers.set(id, await this.ctx.decodeAudioData(data));
      }));
    } catch (e) { /* offline or no espeak-ng: the browser's own speech is the fallback */ }
  }
  get phrasesReady() { return this.buffers.size; }
  out(pan) {
    const gain = this.ctx.createGain();
    gain.gain.value = this.settings.volume;
    const panner = this.ctx.createStereoPanner();
    panner.pan.value = pan;
    gain.connect(panner).connect(this.ctx.destination);
    return gain;
  }
  tone(freq, start, dur, pan, type = "sine", level = 0.6) {
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    const amp = ctx.createGain();
    osc.type = type;
    osc.frequency.value = freq;
    const t0 = ctx.currentTime + start;
    amp.gain.setValueAtTime(0, t0);
    amp.gain.linearRampToValueAtTime(level, t0 + 0.005);
    amp.gain.setValueAtTime(level, t0 + dur - 0.015);
    amp.gain.linearRampToValueAtTime(0, t0 + dur);
    osc.connect(amp).connect(this.out(pan));
    osc.start(t0);
    osc.stop(t0 + dur + 0.01);
    return t0 + dur;
  }
  // The tones of one cue; returns when (in AudioContext time) they end.
  cueTones(cue, pan) {
    if (BLIND_KINDS.has(cue.kind) || cue.kind === "test") {
      // Blindness: a fast high-low siren, three times, square wave, used for nothing else.
      let end = 0;
      for (let i = 0; i < 3; i++) {
        this.tone(1200, i * 0.24, 0.11, pan, "square", 0.5);
        end = this.tone(600, i * 0.24 + 0.12, 0.11, pan, "square", 0.5);
      }
      return end;
    }
    if (cue.tier === "stop") return this.tone(1400, 0, 0.6, pan, "sawtooth", 0.5);
    if (cue.tier === "urgent") { this.tone(1000, 0, 0.08, pan); return this.tone(1000, 0.12, 0.08, pan); }
    return this.tone(660, 0, 0.12, pan, "sine", 0.4);
  }
  speak(cue, pan, at) {
    const text = cue.text || this.phraseText.get(cue.phrase) || "";
    // The rendered phrase plays through the audio context: while that is stopped, the browser's own
    // speech (a separate path) says it instead.
    const buffer = this.settings.voice === "rendered" && this.audioRunning ? this.buffers.get(cue.phrase) : null;
    if (this.speaking) { try { this.speaking.stop(); } catch (e) { /* already ended */ } this.speaking = null; }
    if (buffer) {
      const src = this.ctx.createBufferSource();
      src.buffer = buffer;
      src.connect(this.out(pan / 2));
      src.start(Math.max(at, this.ctx.currentTime));
      this.speaking = src;
      return "rendered";
    }
    if ("speechSynthesis" in window && text) {
      speechSynthesis.cancel();  // a new cue cuts a stale phrase
      const u = new SpeechSynthesisUtterance(text);
      u.rate = 1.2;
      u.volume = this.settings.volume;
      speechSynthesis.speak(u);
      return "browser";
    }
    return null;
  }
  play(cue) {
    if (!this.ctx) this.unlock();
    if (!this.audioRunning) this.checkAudio();
    const s = this.settings;
    const pan = PAN[cue.side] ?? 0;
    const end = s.tones ? this.cueTones(cue, pan) : this.ctx.currentTime;
    const voice = s.speech ? this.speak(cue, pan, end + 0.05) : null;
    if (s.vibration && navigator.vibrate) navigator.vibrate(VIBRATE[cue.tier] || [100]);
    const entry = { at: performance.now(), tier: cue.tier, kind: cue.kind, side: cue.side, text: cue.text, pan, voice };
    this.lastCueAt = entry.at;
    this.played.push(entry);
    if (this.played.length > 50) this.played.shift();
    this.onPlayed(entry);
  }
  // Words only, centred, no tone or vibration: the partner's coaching (not a warning). A warning being
  // heard wins: nothing is said within `quietMs` of one ("deferred": the caller tries again later).
  // Returns how it was said: "rendered", "browser", null (no voice at all) or "deferred".
  say(phrase, text, quietMs = 3000) {
    if (!this.ctx) this.unlock();
    const now = performance.now();
    if (now - this.lastCueAt < quietMs) return "deferred";
    const voice = this.speak({ phrase, text }, 0, this.ctx.currentTime);
    const entry = { at: now, kind: "coach", phrase, text, voice };
    this.played.push(entry);
    if (this.played.length > 50) this.played.shift();
    this.onPlayed(entry);
    return voice;
  }
  // Follow the top hazard that is not blindness (blindness has its own repeated siren). Notices such as
  // path_hidden never reach it: the server leaves them out of `active` (docs/protocol.md).
  setAlert(active) {
    const top = (active || []).find((a) => !BLIND_KINDS.has(a.kind) && RANK[a.tier] >= RANK.urgent) || null;
    this.alert = top;
    if (!top || top.tier !== "stop") this.stopTone();
  }
  stopTone() {
    if (this.tone_) { try { this.tone_.stop(); } catch (e) { /* ended */ } this.tone_ = null; }
  }
  tick() {
    const a = this.alert;
    if (!a || !this.ctx || !this.settings.tones) return;
    const pan = PAN[a.side] ?? 0;
    if (a.tier === "stop") {
      if (!this.tone_) {  // continuous tone at the last tier
        const osc = this.ctx.createOscillator();
        osc.type = "sawtooth";
        osc.frequency.value = 1400;
        const amp = this.ctx.createGain();
        amp.gain.value = 0.35;
        osc.connect(amp).connect(this.out(pan));
        osc.start();
        this.tone_ = osc;
      }
      return;
    }
    const now = this.ctx.currentTime;
    if (now >= this.nextBeep) {
      this.tone(1000, 0, 0.06, pan, "sine", 0.5);
      this.nextBeep = now + beepInterval(a.ttc_s);
    }
  }
  // Soft rising chime: the system is watching again. Never confused with a warning.
  watching() {
    if (!this.ctx) return;
    this.tone(520, 0, 0.1, 0, "sine", 0.25);
    this.tone(780, 0.1, 0.14, 0, "sine", 0.25);
  }
  // Every cue once, spaced out, for the test button.
  testAll() {
    const cues = [
      { tier: "advisory", kind: "person", side: "left", phrase: "person_left", text: "Person behind you, left" },
      { tier: "urgent", kind: "obstacle", side: "right", phrase: "obstacle_urgent_right", text: "Obstacle close, step left" },
      { tier: "stop", kind: "obstacle", side: "centre", phrase: "stop", text: "Stop" },
      { tier: "stop", kind: "camera_lost", side: "centre", phrase: "camera_lost", text: "Stop. Camera lost" },
    ];
    cues.forEach((c, i) => setTimeout(() => this.play(c), i * 2200));
  }
}
