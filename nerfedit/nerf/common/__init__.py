"""What both ns-train methods (nerfedit and nerfedit-generate) share; see `nerfedit/nerf/__init__.py`."""
