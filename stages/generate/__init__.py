"""Procedural animated glTF assets (skinned creatures, morph-target blobs, rigid machines) for demos,
tests and benchmarks. Same seed, same bytes."""

from stages.generate.assets import (
    ASSET_KINDS,
    GENERATOR_VERSION,
    asset_bytes,
    generate_asset,
    generate_assets,
    set_plans,
)
from stages.generate.keyframes import INTERPOLATIONS
from stages.generate.plan import AssetPlan

__all__ = ["ASSET_KINDS", "GENERATOR_VERSION", "INTERPOLATIONS", "AssetPlan", "asset_bytes", "generate_asset",
           "generate_assets", "set_plans"]
