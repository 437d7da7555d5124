"""Local edits: an edit region m (latent resolution, 1 = editable) that multiplies the gradient every loss injects.

    --edit-region none   no region: today's edits, bit-identical
    --edit-region auto   m from the prior's cross-attention on the words the edit changes (`auto`)
    --edit-region PATH   m from PNG masks, white = editable (`masks`)

The loss core applies it in one place (`nerfedit.losses.output.restrict_to_region`, from every loss's `__call__`);
the 2D edit computes m once per image, the NeRF plugin once per training view (its datamanager caches it): the
masked latent gradient flows back through the VAE encoder into the render, so the field only learns from
each view what lies inside its region.
"""
