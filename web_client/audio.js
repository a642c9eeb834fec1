// The walker's ears: tones panned to the hazard's side, pre-rendered speech (or the browser's own),
// vibration, and a parking-sensor beeper whose cadence follows the top hazard's time to contact.

const PAN = { left: -0.8, centre: 0, right: 0.8 };
const RANK = { advisory: 0, urgent: 1, stop: 2 };
export const BLIND_KINDS = new Set(["walker_lost", "camera_lost", "connection_lost"]);
const VIBRATE = { advisory: [80], urgent: [120, 60, 120], stop: [300, 100, 300, 100, 300] };
// The blindness stop repeats every 2 s while it lasts (longer if its words take longer).
export const STOP_REPEAT_S = 2;

// Blindness: a fast high-low siren, three times, square wave, used for nothing else. Drawn into `out` of
// audio context `ctx` from time t0; returns when it ends. The same drawing plays live and is rendered ahead
// for the dead man's switch below, so the two cannot sound different.
function drawSiren(ctx, out, t0) {
  let end = t0;
  for (let i = 0; i < 3; i++) {
    for (const [freq, at] of [[1200, i * 0.24], [600, i * 0.24 + 0.12]]) {
      const osc = ctx.createOscillator();
      const amp = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = freq;
      const s = t0 + at;
      end = s + 0.11;
      amp.gain.setValueAtTime(0, s);
      amp.gain.linearRampToValueAtTime(0.5, s + 0.005);
      amp.gain.setValueAtTime(0.5, end - 0.015);
      amp.gain.linearRampToValueAtTime(0, end);
      osc.connect(amp).connect(out);
      osc.start(s);
      osc.stop(end + 0.01);
    }
  }
  return end;
}

// `coachVoice`: the camera page speaks its coaching to the partner (see camera.html).
export const DEFAULT_SETTINGS = { volume: 1, tones: true, speech: true, vibration: true, voice: "rendered", sensitivity: "normal", coachVoice: true, heightCm: null };

export function loadSettings() {
  try { return { ...DEFAULT_SETTINGS, ...JSON.parse(localStorage.getItem("rearguard.settings") || "{}") }; }
  catch { return { ...DEFAULT_SETTINGS }; }
}
export function saveSettings(s) { localStorage.setItem("rearguard.settings", JSON.stringify(s)); }

// Audio stopped by the phone (a call, an alarm): said in `el`, and a tap anywhere on the page resumes it.
export function showSoundState(player, el) {
  player.onAudioState = (state) => { el.textContent = state === "running" ? "" : "Sound is off: tap the screen to turn it back on"; };
  document.addEventListener("pointerdown", () => { if (player.ctx && !player.audioRunning) player.ctx.resume().catch(() => {}); });
}

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
    this.bus = null;  // every sound goes through this node to the speaker
    this.deadman = null;  // { src, at, period, voice }: the stop scheduled on the audio clock, see armSilence
    this.tail = null;  // { src, end }: a disarmed loop finishing the repeat being heard
    this.stopLoop = null;  // { buffer, key, period, voice }: the blindness stop rendered ahead
    this.stopLoopKey = null;  // the settings the loop being rendered is for
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
      this.bus = this.ctx.createGain();
      this.bus.connect(this.ctx.destination);
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
  // The volume, and a pan unless `pan` is null (centred, no panner).
  out(pan) {
    const gain = this.ctx.createGain();
    gain.gain.value = this.settings.volume;
    if (pan === null) {
      gain.connect(this.bus);
      return gain;
    }
    const panner = this.ctx.createStereoPanner();
    panner.pan.value = pan;
    gain.connect(panner).connect(this.bus);
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
    if (BLIND_KINDS.has(cue.kind) || cue.kind === "test") return drawSiren(this.ctx, this.out(pan), this.ctx.currentTime);
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
    let voice;
    let looped = false;
    try { looped = !!cue.local && this.silenceNow(); } catch (e) { /* not schedulable here: played below */ }
    if (looped) {
      voice = this.deadman.voice;  // the page's own stop: the audio thread plays it, words included
      if (s.speech && !voice) voice = this.speak(cue, pan, this.ctx.currentTime);
    } else {
      // Tones into a stopped audio context would all sound at once when it starts again: the browser's
      // speech says the words meanwhile.
      const end = s.tones && this.audioRunning ? this.cueTones(cue, pan) : this.ctx.currentTime;
      voice = s.speech ? this.speak(cue, pan, end + 0.05) : null;
    }
    if (s.vibration && navigator.vibrate) navigator.vibrate(VIBRATE[cue.tier] || [100]);
    const entry = { at: performance.now(), tier: cue.tier, kind: cue.kind, side: cue.side, text: cue.text, pan, voice, local: !!cue.local, looped };
    this.lastCueAt = entry.at;
    this.played.push(entry);
    if (this.played.length > 50) this.played.shift();
    this.onPlayed(entry);
  }
  // The dead man's switch. The page's own stop cue for a silent server (ear.js) is scheduled on the audio
  // clock `afterS` from now and pushed back each time the server is heard. The audio thread then plays it
  // on time whatever the page's main thread is doing: a hidden page's timers run once a second (once a
  // minute after five minutes), a frozen page's not at all, and a busy one's late. It repeats every
  // STOP_REPEAT_S until the server is heard again, which lets the repeat being heard finish.
  armSilence(afterS) {
    this.renderStopLoop();
    const loop = this.stopLoop;
    this.disarm();
    if (!this.audioRunning || !loop) return;  // the page's own timer (ear.js) is all there is
    // Never over the repeat still finishing from a loop just disarmed (a link that flaps).
    const at = Math.max(this.ctx.currentTime + afterS, this.tailEnd());
    const src = this.ctx.createBufferSource();
    src.buffer = loop.buffer;
    src.loop = true;
    src.connect(this.out(null));
    src.start(at);
    this.deadman = { src, at, period: loop.period, voice: loop.voice };
  }
  tailEnd() { return this.tail && this.tail.end > this.ctx.currentTime ? this.tail.end : 0; }
  // The stop now (the socket closed): starts the loop at once unless it is already sounding.
  silenceNow() {
    if (!this.audioRunning) return false;
    const d = this.deadman;
    if (d && d.at <= Math.max(this.ctx.currentTime, this.tailEnd())) return true;
    this.armSilence(0);
    return !!this.deadman;
  }
  // Not started yet: it never plays. Sounding: it ends with the repeat being heard, words and all, unless
  // `cut` (listening ended on purpose: nothing more is to be heard).
  disarm(cut = false) {
    const d = this.deadman;
    this.deadman = null;
    if (!this.ctx) return;
    const now = this.ctx.currentTime;
    if (cut && this.tail) {
      try { this.tail.src.stop(now); } catch (e) { /* already stopped */ }
      this.tail = null;
    }
    if (!d) return;
    const end = cut || now < d.at ? now : d.at + Math.ceil((now - d.at) / d.period) * d.period;
    try { d.src.stop(end); } catch (e) { /* already stopped */ }
    if (end > now) this.tail = { src: d.src, end };
  }
  // Renders the blindness stop (siren, then its rendered words) into a looping buffer, ahead of need and
  // again when the settings or the loaded phrases change; the last one rendered is used meanwhile.
  renderStopLoop() {
    const s = this.settings;
    const words = s.speech && s.voice === "rendered" ? this.buffers.get("connection_lost") : null;
    const key = `${s.tones}|${!!words}`;
    if (!this.ctx || key === this.stopLoopKey) return;
    this.stopLoopKey = key;
    if (!s.tones && !words) { this.stopLoop = null; return; }  // the walker turned both off
    const rate = this.ctx.sampleRate;
    const sirenEnd = s.tones ? 0.72 : 0;
    const wordsAt = sirenEnd + (s.tones ? 0.05 : 0);
    const period = Math.max(STOP_REPEAT_S, words ? wordsAt + words.duration + 0.3 : 0);
    let rendering;
    try {
      const off = new OfflineAudioContext(2, Math.ceil(period * rate), rate);
      if (s.tones) drawSiren(off, off.destination, 0);
      if (words) {
        const src = off.createBufferSource();
        src.buffer = words;
        src.connect(off.destination);
        src.start(wordsAt);
      }
      rendering = off.startRendering();
    } catch (e) {
      return;  // a browser that cannot render ahead: the page's timer plays the stop (ear.js)
    }
    Promise.resolve(rendering).then((buffer) => {
      if (this.stopLoopKey === key && buffer) this.stopLoop = { buffer, key, period, voice: words ? "rendered" : null };
    }).catch(() => { if (this.stopLoopKey === key) this.stopLoopKey = null; });
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
