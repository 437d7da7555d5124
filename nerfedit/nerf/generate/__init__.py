"""`ns-train nerfedit-generate`: text-to-3D on a generfacto field; see `nerfedit/nerf/__init__.py`."""
