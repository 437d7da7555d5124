"""`tiny_sd` for tests that import it by that name (test_nerf_plugin.py): the builder lives in `nerfedit.priors.tiny`."""

from nerfedit.priors.tiny import TINY_LATENT_SIZE, TINY_MAX_TOKENS, build_tiny_sd, write_tokenizer_files  # noqa: F401
