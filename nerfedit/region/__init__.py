"""Local edits: an edit region m (latent resolution, 1 = editable) that multiplies the gradient every loss injects.

    --edit-region none   no region: today's edits, bit-identical
    --edit-region auto   m from the prior's cross-attention on the words the edit changes (`auto`)
    --edit-region PATH   m from PNG masks, white = editable (`masks`)

With a region the 2D edit also keeps the input's own pixels outside its pixel region (`pixels`: the auto map cut
along the image's edges by GrabCut, or the mask itself): a latent cell is 4–8 pixels wide, so the latent region
alone edits a ring around the object. The loss core applies m in one place
(`nerfedit.losses.output.restrict_to_region`, from every loss's `__call__`); the 2D edit computes m once per
image, the NeRF plugin once per training view (its datamanager caches it): the masked latent gradient flows
back through the VAE encoder into the render, so the field only learns from each view what lies inside its
region.
"""
