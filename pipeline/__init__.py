"""DyMesh pipeline: job specs, Ray wiring, manifests, accounting and the `dymesh` CLI."""

__version__ = "0.1.0"
