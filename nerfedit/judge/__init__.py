"""The judge: a small CNN that reads the colour, shape and floor of a world image.

Our offline stand-in for CLIP R-precision: it checks that an edit or a generation really shows
what the prompt asked for. Trained on the world's renders only, never on outputs of a prior.
"""
