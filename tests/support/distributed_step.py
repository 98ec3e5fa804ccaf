"""Train a few steps on a fixed batch on 1 device or under MirroredStrategy on N logical CPUs.

Run as a script (a fresh process: logical devices must be configured before TensorFlow
starts): `python -m tests.support.distributed_step TASK REPLICAS OUT.npz [CLIPNORM]`. Uses the
pipeline's own model builders, loss, optimizer factory and data splitting, and saves the
weights after training and the loss Keras logged, for the test to compare across runs.
"""
from __future__ import annotations

import sys

import numpy as np


def _set_weights(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])


def main(task: str, replicas: int, out: str, clipnorm: float | None) -> None:
    import tensorflow as tf

    from components.training import distribute

    distribute.configure_logical_cpus(2)  # the same device layout for both runs
    import keras

    from components.training import fit
    from pipeline.tasks.lm.config import LMModelConfig, LMTrainConfig
    from pipeline.tasks.translate.config import TrainConfig, TranslatorModelConfig

    keras.utils.set_random_seed(1)
    if replicas > 1:
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
    else:
        strategy = tf.distribute.get_strategy()
    if task == "translate":
        from components.training.losses import masked_cross_entropy
        from pipeline.tasks.translate.model import build_translator

        rng = np.random.default_rng(7)
        batch, src_len, tgt_len, vocab = 8, 7, 6, 30
        # Ragged real lengths: the replicas' halves hold different numbers of target tokens.
        src = rng.integers(3, vocab, (batch, src_len))
        tgt_in = rng.integers(3, vocab, (batch, tgt_len))
        tgt_out = rng.integers(3, vocab, (batch, tgt_len))
        for i, n in enumerate([7, 2, 5, 3, 6, 6, 1, 4]):
            src[i, n:] = 0
            tgt_in[i, min(n, tgt_len):] = 0
            tgt_out[i, min(n, tgt_len):] = 0
        ds = tf.data.Dataset.from_tensors(({"source": src.astype(np.int32), "target_in": tgt_in.astype(np.int32)},
                                           tgt_out.astype(np.int32)))
        train_cfg = TrainConfig(learning_rate=0.01, clipnorm=clipnorm)
        with strategy.scope():
            model = build_translator(TranslatorModelConfig(embedding_dim=8, units=16, dropout=0.0), vocab, vocab)
            _set_weights(model)
            model.compile(optimizer=fit.make_optimizer(train_cfg.optimizer_spec(), 10), loss=masked_cross_entropy())
        history = model.fit(ds, epochs=1, verbose=0)
    else:
        from pipeline.tasks.lm.data import distribute_stream_blocks, window_dataset
        from pipeline.tasks.lm.model import build_language_model

        streams, vocab = 4, 40
        stream = np.random.default_rng(3).integers(2, vocab, streams * 16).astype(np.int32)
        ds = window_dataset(stream, streams, 5)  # 3 windows: state carries twice
        train_cfg = LMTrainConfig(batch_size=streams, learning_rate=0.1, clipnorm=clipnorm)
        if replicas > 1:
            ds = distribute_stream_blocks(strategy, ds, streams)
        with strategy.scope():
            model = build_language_model(LMModelConfig(embedding_dim=8, units=12, layers=2, dropout=0.0), vocab,
                                         stateful=True, batch_size=streams // replicas)
            _set_weights(model)
            model.compile(optimizer=fit.make_optimizer(train_cfg.optimizer_spec()),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    np.savez(out, loss=np.array(history.history["loss"]), replicas=replicas,
             **{f"w{i}": w for i, w in enumerate(model.get_weights())})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else None)
