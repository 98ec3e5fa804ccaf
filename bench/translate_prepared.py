"""What the translator benches share: a config plus its prepare stage output, loaded the way the
train stage loads them (vocabularies, data splits), so a bench measures the pipeline's own inputs."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Prepared:
    cfg: object
    source_vocab: object
    target_vocab: object
    splits: dict


def add_prepared_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config")
    parser.add_argument("prepare_dir", help="the config's prepare stage output (vocabularies and data)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--verbose", action="store_true")


def load_prepared(args: argparse.Namespace) -> Prepared:
    """Imports TensorFlow: call after `setup_like_the_cli()`."""
    from components.text.vocab import Vocabulary
    from pipeline.config import load_config
    from pipeline.tasks.translate import data
    from pipeline.tasks.translate.stages import SOURCE_VOCAB, TARGET_VOCAB

    cfg = load_config(args.config, args.overrides)
    prep = Path(args.prepare_dir)
    return Prepared(cfg, Vocabulary.load(prep / SOURCE_VOCAB), Vocabulary.load(prep / TARGET_VOCAB),
                    data.splits(data.data_source(cfg.data), cfg.data, prep))


def trained_translator(prepared: Prepared, path: str):
    """The config's translator with the weights of a training backup (`*.weights.h5`) or a `model.keras`."""
    import keras

    from pipeline.tasks.translate.model import build_translator

    model = build_translator(prepared.cfg.model, len(prepared.source_vocab), len(prepared.target_vocab))
    if path.endswith(".keras"):
        model.set_weights(keras.saving.load_model(path, compile=False).get_weights())
    else:
        model.load_weights(path)
    return model
