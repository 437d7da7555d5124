"""`ns-train nerfedit` / `nerfedit-small` (text-driven NeRF editing) and `ns-train nerfedit-generate` (text-to-3D)
as a nerfstudio 1.1.x plugin, split by what each part serves:

    common/     what both methods share
        prior_options     which prior, where it runs, the turntable's length; encoding renders to latents
        render            full-image chunked rendering, deferred back-propagation, scaled/jittered/orbit cameras
        video             side-by-side panels, frame upscaling, mp4 + PNG writing
        validate          bad input → one line, before anything trains (scene, prompts, prior)
        validated_trainer TrainerConfig/Trainer that validate before ns-train prints or writes
        loss_help         per-loss defaults from the catalogue in `--help`
        device            the default device (CPU where there is no CUDA)
        cpu_compat        run-time CPU/offline workarounds (applied on import, no-ops elsewhere)
    edit/       ns-train nerfedit, nerfedit-small
        method_configs    the MethodSpecifications (entry points)
        trainer           nerfstudio's Trainer + validation, the step budget, the edit's iteration and optimisers
        pipeline          reconstruct, then each edit step: render → encode → loss → backward
        datamanager       ray batches; the edit's views (cameras, jitter, crops) and caches (source latents, geometry)
        loss_config       the loss settings and what a loss name brings (lr, appearance-only, bridge switch)
        source            checkpoints: source vs resume, loading, reusing a run's frozen source
        model             nerfacto whose field is the edited (target) one, plus a frozen source copy
        viewer            viser GUI: prompts, loss, guidance, Preview, Start/Pause edit
        turntable         the before | after video written at the end
    generate/   ns-train nerfedit-generate
        config            the MethodSpecification, its trainer and validation
        pipeline          random orbit view → render → encode → loss core
        model             generfacto without its own guidance; `floor` (FloorField), `lighting` (lit renders)
        datamanager       random orbit cameras, readable by ns-export

`edit` and `generate` never import each other; the lighting they share with the toy world is `nerfedit.shading`.
"""

from nerfedit import quiet
from nerfedit.nerf.common import cpu_compat

quiet.install()
cpu_compat.apply()
quiet.quiet_nerfstudio()
