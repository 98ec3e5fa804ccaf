"""The optimizer and strategy are built from typed frozen values, not config sections."""
import dataclasses

import keras
import pytest

from components.training import distribute, fit
from components.training.spec import OptimizerSpec, StrategySpec


def test_optimizer_from_plain_values():
    sgd = fit.make_optimizer(OptimizerSpec("sgd", 0.5, clipnorm=0.25))
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.global_clipnorm == 0.25
    assert float(sgd.learning_rate) == pytest.approx(0.5)
    adam = fit.make_optimizer(OptimizerSpec("adam", 1e-3, lr_schedule="warmup_cosine", warmup_steps=10), 100)
    assert isinstance(adam, keras.optimizers.Adam) and adam.global_clipnorm is None
    assert float(adam.learning_rate) == 0.0  # step 0 of the warm-up; a constant rate would be 1e-3


def test_specs_are_frozen_and_the_default_strategy_is_the_current_one():
    with pytest.raises(dataclasses.FrozenInstanceError):
        OptimizerSpec("sgd", 1.0).learning_rate = 2.0
    import tensorflow as tf

    assert distribute.make_strategy(StrategySpec()) is tf.distribute.get_strategy()
