"""DyMesh stages: one module or package per stage; none of them knows Ray."""
