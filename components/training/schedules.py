"""Learning-rate schedules, with warm-up given in steps or as a fraction of the run.

Why a fraction: a warm-up written in steps for a 23-epoch run silently swallows a 2-epoch
run of the same config (400 of 458 steps warming up, the decay squeezed into the last 58),
and the user sees only a poor BLEU. A fraction scales with the run; a run whose warm-up
still covers more than a third of its steps gets a one-line warning.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

SCHEDULES = ("constant", "plateau", "warmup_cosine", "warmup_rsqrt")
LONG_WARMUP = 1 / 3  # a warm-up longer than this share of the run deserves a warning


def warmup_steps(total_steps: int, steps: int | None, fraction: float | None) -> int:
    """Warm-up length in optimizer steps: `fraction` of the run, else `steps`, capped below the run."""
    n = math.ceil(fraction * total_steps) if fraction is not None else (steps or 0)
    return max(0, min(n, total_steps - 1))


def warmup_warning(warmup: int, total_steps: int, requested: int | None = None) -> str | None:
    """One line when warm-up takes more than a third of training (the lr barely peaks), else None."""
    asked = requested if requested is not None else warmup
    if total_steps <= 0 or asked <= LONG_WARMUP * total_steps:
        return None
    return (f"warning: warm-up is {asked} of {total_steps} training steps ({asked / total_steps:.0%}); "
            "the learning rate barely reaches its peak. Set train.warmup_fraction (e.g. 0.05) "
            "or fewer train.warmup_steps")


@keras.saving.register_keras_serializable(package="pipeline")
class WarmupInverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then peak * sqrt(warmup / step) (Vaswani et al.; OpenNMT, Marian, fairseq).

    Keras has no inverse-square-root schedule; this is its one-line formula."""

    def __init__(self, peak: float, warmup_steps: int):
        self.peak, self.warmup_steps = float(peak), int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32) + 1.0
        warm = tf.cast(max(self.warmup_steps, 1), tf.float32)
        return self.peak * tf.minimum(step / warm, tf.sqrt(warm / step))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps}


def learning_rate(kind: str, peak: float, total_steps: int, warmup: int):
    """A float (constant, plateau: the callback lowers it) or a Keras schedule over `total_steps`."""
    if kind in ("constant", "plateau"):
        return peak
    if kind == "warmup_cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, warmup_target=peak, warmup_steps=warmup,
            decay_steps=max(total_steps - warmup, 1), alpha=0.05)
    if kind == "warmup_rsqrt":
        return WarmupInverseSqrt(peak, warmup)
    raise ValueError(f"unknown lr_schedule {kind!r}; allowed: {', '.join(SCHEDULES)}")
