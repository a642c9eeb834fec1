"""The fixed set of phrases the walker (and the partner) can hear, so every one can be pre-rendered as audio
ahead of time. Ids and texts are stable: pages cache the audio by id and a hash of the text."""

from __future__ import annotations

BLIND_PHRASES = {
    "walker_lost": "Stop. Walker not in view",
    "camera_lost": "Stop. Camera lost",
    "connection_lost": "Stop. Connection lost",
}
# Treadmill mode (vision/treadmill.py) says what to do rather than what is there.
TREADMILL_PHRASES = {
    "step_forward": "Step forward",
    "step_back": "Step back",
    "to_middle": "Move to the middle of the belt",
    "to_centre": "Move to the centre",
    "stumble": "Stop. Hold the rails",
    "stepped_off": "You stepped off the belt",
    "too_dark": "Too dark. Turn on a light",
    "partial_view": "Move so your whole body is in view",
    "camera_moved": "The phone moved. Recalibrate",
    "calibrated": "Calibrated",
}
# Notices about what the system can see, not hazards: said once, never a stop (vision/alerts.py).
NOTICE_PHRASES = {
    "path_hidden": "I cannot see behind you",
}
# Partner mode: coaching for the partner holding the camera (their left and right, as they face the
# walker), shown on the camera page and spoken on the partner's phone when coverage stays low.
COACH_PHRASES = {
    "coach_left": "Walk half a step to your left",
    "coach_right": "Walk half a step to your right",
    "coach_back": "Step back so the path shows",
    "coach_aim_lower": "Aim the phone lower",
    "coach_aim_higher": "Aim the phone higher",
}
NOUNS = {
    "obstacle": "Obstacle",
    "person": "Person",
    "cyclist": "Cyclist",
    "dog": "Dog",
    "vehicle": "Car",
    "kerb": "Kerb",
    "hole": "Hole",
}
SIDES = ("left", "centre", "right")
AWAY = {"left": "right", "right": "left"}  # step away from the side the hazard is on


def phrase_for(kind: str, tier: str, side: str) -> tuple[str, str]:
    """(phrase id, text) of a cue. Sides are as the walker feels them; the advice steps away from it."""
    if kind in BLIND_PHRASES:
        return kind, BLIND_PHRASES[kind]
    if kind in NOTICE_PHRASES:
        return kind, NOTICE_PHRASES[kind]
    if tier == "stop":
        return "stop", "Stop"
    noun = NOUNS.get(kind, "Obstacle")
    key = kind if kind in NOUNS else "obstacle"
    if tier == "urgent":
        if side in AWAY:
            return f"{key}_urgent_{side}", f"{noun} close, step {AWAY[side]}"
        return f"{key}_urgent_centre", f"{noun} right behind you"
    if side in AWAY:
        return f"{key}_{side}", f"{noun} behind you, {side}"
    return f"{key}_centre", f"{noun} behind you"


def phrase_id_of(text: str) -> str:
    """The id of a phrase with exactly this text, or "" (the page then speaks it with the browser)."""
    return _BY_TEXT.get(text, "")


def all_phrases() -> dict[str, str]:
    """Every phrase id the server or the page may ask for, with its text."""
    out = dict(BLIND_PHRASES)
    out.update(TREADMILL_PHRASES)
    out.update(NOTICE_PHRASES)
    out.update(COACH_PHRASES)
    out["stop"] = "Stop"
    out["test"] = "Rearguard sound check"
    for kind in NOUNS:
        for tier in ("advisory", "urgent"):
            for side in SIDES:
                pid, text = phrase_for(kind, tier, side)
                out[pid] = text
    return out


_BY_TEXT = {text: pid for pid, text in all_phrases().items()}
