"""The pose bundle is built offline, reproducibly, and refused when missing or corrupt."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from models import BUNDLE_PATH, ModelBundleError, verify_bundle
from models.pose_bundle import build_bundle_bytes, expected_sha256
from server.app import create_app
from server.config import Settings


def test_installed_bundle_matches_checksum() -> None:
    assert verify_bundle() == BUNDLE_PATH


# mediapipe's metadata writer leaves temporary files for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_build_is_reproducible_and_matches_the_recorded_checksum() -> None:
    data = build_bundle_bytes()
    assert hashlib.sha256(data).hexdigest() == expected_sha256()


def test_missing_bundle_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelBundleError, match=r"missing.*rearguard models build"):
        verify_bundle(tmp_path / "nope.task")


def test_corrupt_bundle_fails_at_app_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "pose.task"
    shutil.copy(BUNDLE_PATH, bad)
    with bad.open("r+b") as f:
        f.seek(5000)
        f.write(b"\0" * 16)
    with pytest.raises(ModelBundleError, match=r"corrupt.*rearguard models build"):
        create_app(Settings(model_path=bad))
