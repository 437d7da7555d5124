"""`ns-train nerfedit`: text-driven NeRF editing as a nerfstudio 1.1.x plugin.

    method_configs  the `nerfedit` / `nerfedit-small` MethodSpecifications (entry points)
    trainer         nerfstudio's Trainer + source/resume checkpoint handling and input validation
    pipeline        thin VanillaPipeline: reconstruct, then render → encode → loss core → step
    model           nerfacto whose field is the edited (target) one, plus a frozen source copy
    render          full-image chunked rendering, jittered/orbit cameras, deferred backprop
    viewer          viser GUI: prompts, loss, guidance, Preview, Start/Pause edit
    turntable       the before/after video written at the end
    validate        bad input → one line, before anything trains
    cpu_compat      run-time CPU/offline workarounds (applied on import, no-ops elsewhere)
"""

from nerfedit.nerf import cpu_compat

cpu_compat.apply()
