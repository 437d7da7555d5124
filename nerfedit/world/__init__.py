"""The procedural world: primitives on textured floors, rendered from orbit cameras, with captions.

It is the training data of the embedded diffusion prior and of the judge, and the source of the
test scenes under `scenes/`. See `vocab` (words and captions), `shapes` (the primitives and
`ObjectSpec`), `floors` (floor textures and sky), `render` (the ray tracer) and `scene`
(nerfstudio-format multi-view scenes). Its light and orbit cameras are `nerfedit.shading` and
`nerfedit.orbit`, shared with text-to-3D.
"""
