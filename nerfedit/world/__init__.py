"""The procedural world: primitives on textured floors, rendered from orbit cameras, with captions.

It is the training data of the embedded diffusion prior and of the judge, and the source of the
test scenes under `scenes/`. See `vocab` (words and captions), `render` (the ray tracer) and
`scene` (nerfstudio-format multi-view scenes).
"""
