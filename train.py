"""Train SOST: ``python train.py --config configs/cpu.py --workdir runs/cpu``.

A thin entry point to ``sost-jax train``.
"""

import sys

from sost_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
