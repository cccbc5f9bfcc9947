"""Spec-exact, vectorised glTF 2.0 animation evaluator: asset -> Scene -> world-space vertices [T, V, 3]."""

from .animation import AnimationInfo
from .errors import AssetError, BadData, LimitExceeded, MalformedAsset, UnsafeAsset, UnsupportedAsset
from .limits import Limits
from .scene import Scene, load_asset, load_asset_bytes, sample_times

__all__ = [
    "AnimationInfo",
    "AssetError",
    "BadData",
    "LimitExceeded",
    "Limits",
    "MalformedAsset",
    "Scene",
    "UnsafeAsset",
    "UnsupportedAsset",
    "load_asset",
    "load_asset_bytes",
    "sample_times",
]
