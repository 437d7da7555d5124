"""Training nerfedit's embedded `toy` prior from scratch (run by `scripts/train_prior.py`).

    common        the run's hyper-parameters (`Config`), logging, checkpoints, the cosine schedule
    autoencoder   stages data (world renders), vae (AutoencoderKL), latents (the encoded data set)
    denoiser      stages unet (text encoder + UNet, EMA) and export (the diffusers folder)
    stages        every stage in order (`run_stages`), with the corrective and the judge trained for the prior
"""
