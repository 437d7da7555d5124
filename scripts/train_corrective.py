#!/usr/bin/env python
"""Train LMC-SDS's learned manifold corrective b̂ψ(z, t) for any prior: `nerfedit.losses.corrective_training` (see there).

    python scripts/train_corrective.py --prior toy --world 2000 --steps 20000          # toy prior, rendered world
    python scripts/train_corrective.py --prior sd15 --images photos/ --out sd15_corrective.pt
    python scripts/train_corrective.py ... --resume                                    # continue from <out>.ckpt
"""

import sys

from nerfedit.errors import UserError, exit_with
from nerfedit.losses.corrective_training import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:
        exit_with(error, prog="train_corrective.py")
