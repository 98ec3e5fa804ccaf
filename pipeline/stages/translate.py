"""The translator pipeline: prepare -> train -> evaluate -> export.

Each function turns (config, upstream stage folders) into files in `ctx.out_dir` and
returns the metrics for the manifest and MLflow; the runner handles the rest.
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import mlflow
import tensorflow as tf

from components.data import loading
from components.data.paths import resolve_data_dir
from components.data.translation_dataset import make_translation_dataset
from components.evaluation.bleu_callback import ValidationBleu
from components.evaluation.translation_eval import corpus_bleu, teacher_forced_metrics, translate_corpus
from components.export.translator_export import export_translator, graph_op_types
from components.models.translate_fn import translate_strings
from components.models.translator import build_translator, translator_parts
from components.text.vocab import TextEncoder, Vocabulary, fit_vocabulary
from components.tracking.plots import plot_curves
from components.training import fit
from components.training.losses import MaskedTokenAccuracy, masked_cross_entropy
from pipeline.runner import Stage

SOURCE_VOCAB, TARGET_VOCAB = "source_vocab.json", "target_vocab.json"
MODEL_FILE = "model.keras"


# ------------------------------------------------------------------ helpers

def _data_fingerprint(cfg) -> str:
    return loading.data_fingerprint(cfg.data.corpus, cfg.data.config, resolve_data_dir(cfg.data.data_dir))


def _splits(cfg, prepare_dir: Path) -> dict[str, tf.data.Dataset]:
    builder = loading.prepare_builder(cfg.data.corpus, cfg.data.config,
                                      resolve_data_dir(cfg.data.data_dir), prepare_dir / "tfds")
    splits = loading.load_splits(builder)
    if cfg.data.max_train_examples:
        splits["train"] = splits["train"].take(cfg.data.max_train_examples)
    for split, ds in splits.items():
        missing = {cfg.data.source_lang, cfg.data.target_lang} - set(ds.element_spec)
        if missing:
            raise ValueError(f"data.source_lang/target_lang: corpus {cfg.data.corpus}/{cfg.data.config} "
                             f"has languages {sorted(ds.element_spec)}, not {sorted(missing)}")
    return splits


def _texts(ds: tf.data.Dataset, key: str) -> list[str]:
    return [t.decode("utf-8") for t in ds.map(lambda ex: ex[key]).as_numpy_iterator()]


def _vocabs(prepare_dir: Path) -> tuple[Vocabulary, Vocabulary]:
    return Vocabulary.load(prepare_dir / SOURCE_VOCAB), Vocabulary.load(prepare_dir / TARGET_VOCAB)


def _dataset(cfg, ds, src_vocab, tgt_vocab, *, batch_size, shuffle: bool):
    return make_translation_dataset(
        ds, cfg.data.source_lang, cfg.data.target_lang,
        TextEncoder(src_vocab), TextEncoder(tgt_vocab), batch_size=batch_size,
        max_source_len=cfg.text.max_source_len, max_target_len=cfg.text.max_target_len,
        bucket_boundaries=cfg.train.bucket_boundaries,
        shuffle_buffer=cfg.train.shuffle_buffer if shuffle else 0, seed=cfg.seed,
        reverse_source=cfg.text.reverse_source)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


# ------------------------------------------------------------------ stages

def prepare(ctx) -> dict:
    """Build the TFDS dataset, fit vocabularies on the training split only, save them."""
    cfg = ctx.cfg
    splits = _splits(cfg, ctx.out_dir)
    sizes = {name: int(ds.reduce(0, lambda n, _: n + 1).numpy()) for name, ds in splits.items()}
    ctx.log(f"{cfg.data.corpus}/{cfg.data.config}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    vocabs = {}
    for lang, filename in ((cfg.data.source_lang, SOURCE_VOCAB), (cfg.data.target_lang, TARGET_VOCAB)):
        vocab = fit_vocabulary(_texts(splits["train"], lang), kind=cfg.text.tokenizer,
                               lowercase=cfg.text.lowercase, max_size=cfg.text.max_vocab_size,
                               min_count=cfg.text.min_count)
        vocab.save(ctx.out_dir / filename)
        mlflow.log_artifact(str(ctx.out_dir / filename), artifact_path="vocab")
        vocabs[lang] = len(vocab)
    ctx.log(f"vocabularies ({cfg.text.tokenizer}): " + ", ".join(f"{k} {v}" for k, v in vocabs.items()))
    info = {"dataset": f"{cfg.data.corpus}/{cfg.data.config}", "split_sizes": sizes,
            "data_fingerprint": _data_fingerprint(cfg)}
    _write_json(ctx.out_dir / "data_info.json", info)
    mlflow.log_params({"dataset": info["dataset"], "data_fingerprint": info["data_fingerprint"][:16]})
    metrics = {f"{k}_examples": v for k, v in sizes.items()}
    metrics.update({"source_vocab_size": vocabs[cfg.data.source_lang],
                    "target_vocab_size": vocabs[cfg.data.target_lang]})
    return {"metrics": metrics, "info": info}


def train(ctx) -> dict:
    """Teacher-forced training with masked cross-entropy; keeps the best weights by val loss."""
    cfg = ctx.cfg
    keras.utils.set_random_seed(cfg.seed)
    prep = ctx.inputs["prepare"]
    src_vocab, tgt_vocab = _vocabs(prep)
    splits = _splits(cfg, prep)
    train_ds = _dataset(cfg, splits["train"], src_vocab, tgt_vocab, batch_size=cfg.train.batch_size,
                        shuffle=True)
    val_ds = _dataset(cfg, splits["validation"], src_vocab, tgt_vocab, batch_size=cfg.train.batch_size,
                      shuffle=False)
    batches_per_epoch, tokens_per_epoch = fit.count_batches_and_tokens(train_ds)
    if cfg.train.steps_per_epoch:
        train_ds = train_ds.repeat()
    total_steps = (cfg.train.steps_per_epoch or batches_per_epoch) * cfg.train.epochs

    strategy = fit.make_strategy(cfg.train.distribute)
    with strategy.scope():
        model = build_translator(cfg.model, len(src_vocab), len(tgt_vocab))
        model.compile(optimizer=fit.make_optimizer(cfg.train, total_steps),
                      loss=masked_cross_entropy(cfg.train.label_smoothing),
                      metrics=[MaskedTokenAccuracy(), _perplexity_metric()],
                      jit_compile=cfg.train.jit_compile)
    params = model.count_params()
    ctx.log(f"model: {params:,} parameters; {tokens_per_epoch:,} target tokens per epoch")
    mlflow.log_param("model_parameters", params)

    # Order matters: callbacks share one logs dict, so metrics are added before they are read.
    callbacks = [fit.Throughput(tokens_per_epoch, batches_per_epoch)]
    monitor = cfg.train.early_stopping_metric
    n_bleu = cfg.train.val_bleu_examples or (500 if monitor == "val_bleu" else 0)
    if n_bleu:
        val_pairs = splits["validation"].take(n_bleu)
        callbacks.append(ValidationBleu(
            lambda m: make_translate_fn(cfg, m, src_vocab, tgt_vocab, beam_size=1),
            _texts(val_pairs, cfg.data.source_lang), _texts(val_pairs, cfg.data.target_lang),
            cfg.evaluate.batch_size, cfg.evaluate.bleu_tokenize))
    if cfg.train.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=cfg.train.plateau_factor, patience=cfg.train.plateau_patience,
            verbose=1))
    if cfg.train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max" if monitor == "val_bleu" else "min",
            patience=cfg.train.early_stopping_patience, restore_best_weights=True))
    # Backups are keyed by fingerprint: a killed run resumes, a changed config starts fresh.
    backup_dir = Path(cfg.work_dir) / cfg.name / f".train-backup-{ctx.fingerprint[:12]}"
    callbacks += [keras.callbacks.BackupAndRestore(str(backup_dir)), mlflow.keras.MlflowCallback()]
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs,
                        steps_per_epoch=cfg.train.steps_per_epoch, callbacks=callbacks,
                        verbose=fit.progress_verbosity())
    hist = history.history
    model.save(ctx.out_dir / MODEL_FILE)
    fit.save_history(hist, ctx.out_dir / "history.json")
    plot_curves(hist, ctx.out_dir / "training_curves.png", title=cfg.name)
    mlflow.log_artifact(str(ctx.out_dir / "training_curves.png"), artifact_path="plots")
    best = min(range(len(hist["val_loss"])), key=lambda i: hist["val_loss"][i])
    if monitor == "val_bleu":
        best = max(range(len(hist["val_bleu"])), key=lambda i: hist["val_bleu"][i])
    metrics = {"final_train_loss": hist["loss"][-1], "best_val_loss": hist["val_loss"][best],
               "best_epoch": best + 1, "epochs_run": len(hist["loss"]),
               "train_tokens_per_sec": sum(hist["tokens_per_sec"]) / len(hist["tokens_per_sec"]),
               "model_parameters": params}
    if "val_bleu" in hist:
        metrics["best_val_bleu"] = hist["val_bleu"][best]
    return {"metrics": metrics}


def _perplexity_metric():
    import keras_hub
    from components.text.vocab import PAD_ID
    return keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=PAD_ID, name="perplexity")


def load_trained(train_dir: Path) -> keras.Model:
    return keras.saving.load_model(train_dir / MODEL_FILE, compile=False)


def make_translate_fn(cfg, model, src_vocab, tgt_vocab, beam_size: int | None = None):
    """The same decode path the export traces, as an in-process tf.function."""
    beam_size = cfg.evaluate.beam_size if beam_size is None else beam_size
    parts = translator_parts(model)
    src_enc, tgt_enc = TextEncoder(src_vocab), TextEncoder(tgt_vocab)
    return tf.function(lambda texts: translate_strings(
        texts, parts, src_enc, tgt_enc, cfg.text.max_source_len, cfg.evaluate.max_decode_len,
        beam_size, cfg.evaluate.length_penalty, cfg.text.reverse_source),
        input_signature=[tf.TensorSpec([None], tf.string)])


def evaluate(ctx) -> dict:
    """Test BLEU (greedy), token accuracy and perplexity; validation loss; samples file."""
    cfg = ctx.cfg
    prep = ctx.inputs["prepare"]
    src_vocab, tgt_vocab = _vocabs(prep)
    splits = _splits(cfg, prep)
    model = load_trained(ctx.inputs["train"])
    metrics = {}
    for split, prefix in (("validation", "val"), ("test", "test")):
        ds = _dataset(cfg, splits[split], src_vocab, tgt_vocab, batch_size=cfg.evaluate.batch_size,
                      shuffle=False)
        for key, value in teacher_forced_metrics(model, ds).items():
            metrics[f"{prefix}_{key}"] = value
    test = splits["test"]
    if cfg.evaluate.max_test_examples:
        test = test.take(cfg.evaluate.max_test_examples)
    sources = _texts(test, cfg.data.source_lang)
    references = _texts(test, cfg.data.target_lang)
    translate_fn = make_translate_fn(cfg, model, src_vocab, tgt_vocab)
    hypotheses = translate_corpus(translate_fn, sources, cfg.evaluate.batch_size)
    bleu, signature = corpus_bleu(hypotheses, references, cfg.evaluate.bleu_tokenize)
    metrics["test_bleu"] = bleu
    ctx.log(f"test BLEU {bleu:.2f} ({signature}); test perplexity {metrics['test_perplexity']:.2f}; "
            f"val loss {metrics['val_loss']:.3f}")
    samples = [{"source": s, "reference": r, "hypothesis": h}
               for s, r, h in zip(sources, references, hypotheses)]
    with (ctx.out_dir / "samples.jsonl").open("w", encoding="utf-8") as f:
        for row in samples:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if cfg.evaluate.train_sample_size:
        # On a tiny corpus the test score says little; how well training pairs are fit says more.
        fit_sample = splits["train"].take(cfg.evaluate.train_sample_size)
        train_src = _texts(fit_sample, cfg.data.source_lang)
        train_hyp = translate_corpus(translate_fn, train_src, cfg.evaluate.batch_size)
        metrics["train_sample_bleu"], _ = corpus_bleu(train_hyp, _texts(fit_sample, cfg.data.target_lang),
                                                      cfg.evaluate.bleu_tokenize)
        ctx.log(f"BLEU on {len(train_src)} training pairs: {metrics['train_sample_bleu']:.2f}")
    examples = translate_corpus(translate_fn, list(cfg.evaluate.examples), cfg.evaluate.batch_size)
    _write_json(ctx.out_dir / "examples.json", dict(zip(cfg.evaluate.examples, examples)))
    _write_json(ctx.out_dir / "hypotheses.json", hypotheses)
    for name in ("samples.jsonl", "examples.json"):
        mlflow.log_artifact(str(ctx.out_dir / name), artifact_path="evaluation")
    mlflow.set_tag("bleu_signature", signature)
    ctx.log("test samples (source -> hypothesis | reference):")
    for s, r, h in list(zip(sources, references, hypotheses))[: cfg.evaluate.num_samples]:
        ctx.log(f"  {s}  ->  {h}  |  {r}")
    return {"metrics": metrics, "info": {"bleu_signature": signature}}


def export(ctx) -> dict:
    """SavedModel in TF Serving layout; checked to reload and match the in-process decode."""
    cfg = ctx.cfg
    src_vocab, tgt_vocab = _vocabs(ctx.inputs["prepare"])
    model = load_trained(ctx.inputs["train"])
    base = Path(cfg.export.export_dir) / cfg.model_name
    path = export_translator(model, src_vocab, tgt_vocab, cfg.text.max_source_len,
                             cfg.evaluate.max_decode_len, base, cfg.evaluate.beam_size,
                             cfg.evaluate.length_penalty, cfg.text.reverse_source)
    ctx.extra_outputs.append(str(path.resolve()))
    cudnn_ops = sorted(op for op in graph_op_types(path) if op.startswith("CudnnRNN"))
    if cudnn_ops:
        raise RuntimeError(f"exported graph is not portable: it contains {cudnn_ops}")
    # Check the round trip now rather than in production: reload and compare.
    examples = list(cfg.evaluate.examples)
    expected = translate_corpus(make_translate_fn(cfg, model, src_vocab, tgt_vocab), examples, 64)
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = [s.decode("utf-8") for s in served(inputs=tf.constant(examples))["outputs"].numpy()]
    if got != expected:
        raise RuntimeError(f"reloaded SavedModel disagrees with the in-process decode: {got} != {expected}")
    _write_json(ctx.out_dir / "export.json", {"path": str(path.resolve()), "version": int(path.name),
                                              "model_name": cfg.model_name, "examples": dict(zip(examples, got))})
    mlflow.log_artifacts(str(path), artifact_path="saved_model")
    ctx.log(f"SavedModel: {path} (version {path.name})")
    for src, hyp in zip(examples, got):
        ctx.log(f"  {src}  ->  {hyp}")
    return {"metrics": {"export_version": int(path.name)},
            "info": {"path": str(path.resolve()), "examples": dict(zip(examples, got))}}


STAGES = [
    Stage("prepare", prepare, sections=("data", "text"), data_fingerprint=_data_fingerprint),
    Stage("train", train, deps=("prepare",), sections=("data", "text", "model", "train")),
    Stage("evaluate", evaluate, deps=("prepare", "train"), sections=("data", "text", "evaluate")),
    Stage("export", export, deps=("prepare", "train"), sections=("text", "evaluate", "export")),
]
