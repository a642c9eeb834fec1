// The walker's ears: tones panned to the hazard's side, speech, vibration. One instance per page.

const PAN = { left: -0.8, centre: 0, right: 0.8 };
const RANK = { advisory: 0, urgent: 1, stop: 2 };

export class CuePlayer {
  constructor() {
    this.ctx = null;
    this.volume = 1.0;
    this.speech = "speechSynthesis" in window;
    this.played = [];  // the last cues played, newest last, for the on-screen display
    this.onPlayed = () => {};
  }
  // Must run inside a user gesture: phone browsers keep audio locked until then.
  unlock() {
    if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
    if (this.ctx.state === "suspended") this.ctx.resume();
    if (this.speech) {
      const u = new SpeechSynthesisUtterance(" ");
      u.volume = 0;
      speechSynthesis.speak(u);
    }
    return this.ctx;
  }
  tone(freq, start, dur, pan, type = "sine", gain = 0.6) {
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    const amp = ctx.createGain();
    const panner = ctx.createStereoPanner();
    osc.type = type;
    osc.frequency.value = freq;
    panner.pan.value = pan;
    const t0 = ctx.currentTime + start;
    amp.gain.setValueAtTime(0, t0);
    amp.gain.linearRampToValueAtTime(gain * this.volume, t0 + 0.01);
    amp.gain.setValueAtTime(gain * this.volume, t0 + dur - 0.02);
    amp.gain.linearRampToValueAtTime(0, t0 + dur);
    osc.connect(amp).connect(panner).connect(ctx.destination);
    osc.start(t0);
    osc.stop(t0 + dur + 0.01);
  }
  play(cue) {
    if (!this.ctx) this.unlock();
    const pan = PAN[cue.side] ?? 0;
    if (cue.tier === "stop") {
      // Unmistakable: a fast high-low siren, three times, square wave, never used for anything else.
      for (let i = 0; i < 3; i++) {
        this.tone(1200, i * 0.24, 0.11, pan, "square", 0.5);
        this.tone(600, i * 0.24 + 0.12, 0.11, pan, "square", 0.5);
      }
      if (navigator.vibrate) navigator.vibrate([300, 100, 300, 100, 300]);
    } else if (cue.tier === "urgent") {
      this.tone(1000, 0, 0.08, pan); this.tone(1000, 0.12, 0.08, pan);
      if (navigator.vibrate) navigator.vibrate([100, 50, 100]);
    } else {
      this.tone(660, 0, 0.12, pan, "sine", 0.4);
    }
    if (this.speech && cue.text) {
      if (RANK[cue.tier] >= 1) speechSynthesis.cancel();  // a more urgent phrase cuts a stale one
      const u = new SpeechSynthesisUtterance(cue.text);
      u.rate = 1.2;
      u.volume = this.volume;
      speechSynthesis.speak(u);
    }
    const entry = { at: performance.now(), tier: cue.tier, kind: cue.kind, side: cue.side, text: cue.text, pan };
    this.played.push(entry);
    if (this.played.length > 50) this.played.shift();
    this.onPlayed(entry);
  }
  // Soft rising chime: the system is watching again. Never confused with a warning.
  watching() {
    if (!this.ctx) return;
    this.tone(520, 0, 0.1, 0, "sine", 0.25);
    this.tone(780, 0.1, 0.14, 0, "sine", 0.25);
  }
}
