"""nerfedit: text-driven editing of images and NeRF scenes, and text-to-3D, by score distillation."""

__version__ = "0.1.0"
