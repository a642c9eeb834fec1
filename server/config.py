"""One settings object for the service, read from `REARGUARD_*` environment variables or passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import BUNDLE_PATH
from vision.alerts import AlertConfig
from vision.drill import load_drill
from vision.pipeline import PipelineConfig
from vision.treadmill import Calibration


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REARGUARD_", extra="forbid")

    host: str = Field("0.0.0.0", description="Address to listen on; 0.0.0.0 lets phones on the LAN join.")
    port: int = Field(8000, ge=1, le=65535)
    https: bool = Field(False, description="Serve TLS with a self-signed certificate made on first use.")
    data_dir: Path = Field(
        Path.home() / ".local" / "share" / "rearguard",
        description="Where the self-signed certificate is kept. No video is stored anywhere.",
    )
    model_path: Path = Field(
        BUNDLE_PATH, description="The PoseLandmarker bundle, checked against its checksum."
    )
    public_base_url: str | None = Field(
        None,
        description="Base URL for links and QR codes when behind a reverse proxy, e.g. https://rg.example",
    )
    forwarded_allow_ips: str = Field("127.0.0.1", description="Proxies trusted for X-Forwarded-* headers.")
    max_sessions: int = Field(8, ge=1, le=256, description="Live sessions at once; each pose stream ~1 core.")
    max_walkers_per_session: int = Field(4, ge=1, le=16)
    session_idle_ttl_s: float = Field(1800.0, ge=10, description="A session with no socket this long ends.")
    max_frame_bytes: int = Field(
        1_000_000, ge=10_000, le=16_000_000, description="Largest binary frame; a 640 px JPEG is ~30-80 kB."
    )
    max_text_bytes: int = Field(4096, ge=256, le=65536, description="Largest JSON control message.")
    max_errors_per_minute: int = Field(
        30, ge=1, description="Malformed messages tolerated per socket per minute before it is closed."
    )
    camera_timeout_s: float = Field(
        0.7,
        gt=0.1,
        le=5.0,
        description="No frame for this long means the camera is lost. 0.7 s leaves room for delivery "
        "inside the one-second fail-safe budget.",
    )
    vision_start_s: float = Field(
        5.0,
        gt=0.5,
        le=60.0,
        description="Frames coming in with none analysed yet for this long (the pose model loads in about "
        "a second) is blind: a stop cue, as for a lost camera.",
    )
    vision_retry_s: float = Field(
        5.0, gt=0, le=300, description="A pose model that failed to load is tried again after this long."
    )
    session_unjoined_ttl_s: float = Field(
        120.0,
        ge=10,
        description="A session that no socket has ever joined ends after this long (sessions are made "
        "without a token: a burst of them must not lock everyone out for half an hour).",
    )
    heartbeat_interval_s: float = Field(
        0.25,
        gt=0.05,
        le=1.0,
        description="Server heartbeat period; the walker page alarms after 1 s without.",
    )
    walker_lost_grace_ms: int = Field(
        500, ge=0, le=3000, description="Walker out of view this long: stop cue."
    )
    stop_repeat_s: float = Field(
        2.0, ge=0.5, le=30, description="A persisting stop condition repeats this often."
    )
    repeat_s: float = Field(
        0.0,
        ge=0,
        le=60,
        description="Speak a persisting obstacle again this often; 0: never (beeps carry it).",
    )
    hold_s: float = Field(
        0.6, ge=0, le=3, description="A hazard missing from detection for less than this is the same hazard."
    )
    sensitivity: Literal["early", "normal", "fewer"] = Field(
        "normal", description="Default warning sensitivity; each walker page can change its session's."
    )
    alert_interval_s: float = Field(
        0.25, gt=0.05, le=2, description="How often the walker page hears the figures of a sounding hazard."
    )
    pipeline_release_s: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="Free a session's pose model when its camera has been away this long.",
    )
    drill: Path | None = Field(
        None, description="A drill file of scripted hazards (docs/protocol.md) played in every session."
    )
    num_poses: int = Field(
        1,
        ge=1,
        le=6,
        description="People the pose model looks for. More than one makes the detector run on every "
        "frame (measured 22 -> 38 ms a frame) and rarely finds a second person at phone distances.",
    )
    vision_workers: int = Field(
        2, ge=1, le=64, description="Threads running vision work, about one per core."
    )

    def pipeline_config(
        self, mode: Literal["partner", "treadmill"] = "partner", calibration: Calibration | None = None
    ) -> PipelineConfig:
        return PipelineConfig(
            walker_lost_grace_ms=self.walker_lost_grace_ms,
            num_poses=self.num_poses,
            model_path=self.model_path,
            drill=load_drill(self.drill) if self.drill else (),
            mode=mode,
            calibration=calibration,
        )

    def alert_config(self) -> AlertConfig:
        return AlertConfig(
            stop_repeat_s=self.stop_repeat_s,
            repeat_s=self.repeat_s,
            hold_s=self.hold_s,
            sensitivity=self.sensitivity,
        )
