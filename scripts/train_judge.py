#!/usr/bin/env python
"""Train the judge (colour / shape / floor classifier) on renders of the world: `nerfedit.judge.train` (see there).

    python scripts/train_judge.py                       # ~4 min of CPU time; writes nerfedit/assets/judge/judge.pt
    python scripts/train_judge.py --resume              # continue from runs/judge/last.pt
"""

from nerfedit.judge.train import main

if __name__ == "__main__":
    main()
