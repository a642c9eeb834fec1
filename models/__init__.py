"""Model bundles Rearguard runs on, built offline from the pinned mediapipe wheel and verified by checksum."""

from models.pose_bundle import BUNDLE_PATH, ModelBundleError, build_bundle, verify_bundle

__all__ = ["BUNDLE_PATH", "ModelBundleError", "build_bundle", "verify_bundle"]
