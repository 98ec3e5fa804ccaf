"""Start a bench the way the pipeline CLI starts: quiet C++ start-up logs, the BFC allocator default.

Must run before TensorFlow's first op (the allocator is chosen then); returns the allocator
setting as a label, so every bench prints what it measured with.
"""
from __future__ import annotations

import sys

from components.runtime.allocator import ENV, prefer_bfc_allocator
from pipeline import console


def setup_like_the_cli() -> str:
    console.setup(verbose="--verbose" in sys.argv)
    return f"{ENV}={prefer_bfc_allocator()}"  # =false in the environment: TensorFlow's default
