"""Build and verify the MediaPipe PoseLandmarker `.task` bundle from the models inside the mediapipe wheel.

mediapipe 0.10.21 ships the BlazePose detector and the full landmark model as bare `.tflite` files (for
the legacy solutions API). The Tasks API wants them zipped into one `.task` bundle, each carrying
image-normalisation metadata, or it refuses them. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
BUNDLE_PATH = MODELS_DIR / "pose_landmarker_full.task"
CHECKSUM_PATH = MODELS_DIR / "pose_landmarker_full.task.sha256"
FIX_HINT = "Build it with `rearguard models build` (scripts/install.sh does this)."

# The legacy graphs feed the detector pixels scaled to [-1, 1] and the landmark model pixels scaled to
# [0, 1] (ImageToTensorCalculator output_tensor_float_range in pose_detection_cpu / pose_landmark_cpu).
# The metadata says the same thing as (pixel - mean) / std.
_DETECTOR_NORM = ([127.5], [127.5])
_LANDMARKER_NORM = ([0.0], [255.0])
_DETECTOR_OUTPUTS = 2  # box regressors, scores
_LANDMARKER_OUTPUTS = 5  # landmarks, pose flag, segmentation, heatmap, world landmarks
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps make the bundle byte-for-byte reproducible
_ALIGNMENT = 4  # MediaPipe mmaps the stored members; they must start 4-byte aligned


class ModelBundleError(RuntimeError):
    """The pose bundle is missing, corrupt, or cannot be built; the message says how to fix it."""


def _with_metadata(model: bytes, name: str, norm: tuple[list[float], list[float]], outputs: int) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    writer.add_general_info(name, f"{name} from the mediapipe 0.10.21 wheel")
    writer.add_image_input(norm_mean=norm[0], norm_std=norm[1])
    for _ in range(outputs):
        writer.add_feature_output()
    content, _json = writer.populate()
    return bytes(content)


def _aligned_zip(members: dict[str, bytes]) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import AlignZipFile

    buf = io.BytesIO()
    # mediapipe's own writer pads so stored members start aligned for mmap; fixed timestamps keep
    # the bytes reproducible so a checksum can vouch for them.
    with AlignZipFile(buf, mode="w", alignment=_ALIGNMENT) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), data)
    return buf.getvalue()


def build_bundle_bytes() -> bytes:
    """The bundle's bytes, built from the two pose models inside the installed mediapipe wheel."""
    try:
        import mediapipe
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelBundleError(f"mediapipe is not installed ({exc}). Run scripts/install.sh.") from exc
    modules = Path(mediapipe.__file__).parent / "modules"
    detector = modules / "pose_detection" / "pose_detection.tflite"
    landmarker = modules / "pose_landmark" / "pose_landmark_full.tflite"
    for path in (detector, landmarker):
        if not path.is_file():
            raise ModelBundleError(
                f"{path} is missing: mediapipe=={mediapipe.__version__} does not carry the pose models. "
                "Install mediapipe==0.10.21 (scripts/install.sh)."
            )
    return _aligned_zip(
        {
            "pose_detector.tflite": _with_metadata(
                detector.read_bytes(), "pose_detector", _DETECTOR_NORM, _DETECTOR_OUTPUTS
            ),
            "pose_landmarks_detector.tflite": _with_metadata(
                landmarker.read_bytes(), "pose_landmarks_detector", _LANDMARKER_NORM, _LANDMARKER_OUTPUTS
            ),
        }
    )


def expected_sha256() -> str:
    return CHECKSUM_PATH.read_text().split()[0]


def build_bundle(out: Path = BUNDLE_PATH, *, check: bool = True) -> Path:
    """Write the bundle to `out`; with `check`, refuse a result that differs from the recorded checksum."""
    data = build_bundle_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if check and digest != expected_sha256():
        raise ModelBundleError(
            f"the bundle built from this mediapipe install has sha256 {digest}, expected "
            f"{expected_sha256()}. Is mediapipe==0.10.21 installed?"
        )
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def verify_bundle(path: Path = BUNDLE_PATH) -> Path:
    """Return `path` if it holds the bundle with the recorded checksum; raise ModelBundleError otherwise."""
    if not path.is_file():
        raise ModelBundleError(f"pose model bundle {path} is missing. {FIX_HINT}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected_sha256():
        raise ModelBundleError(
            f"pose model bundle {path} is corrupt (sha256 {digest}, expected {expected_sha256()}). {FIX_HINT}"
        )
    return path
