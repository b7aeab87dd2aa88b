"""Parameterise spectra with a template library: ``python infer.py FILES... --library L``.

A thin entry point to ``sost-jax infer``.
"""

import sys

from sost_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
