"""`ns-train nerfedit` / `nerfedit-small`: text-driven editing of a nerfacto scene; see `nerfedit/nerf/__init__.py`."""
