"""The translator pipeline: prepare -> train -> evaluate -> export.

Each function turns (config, upstream stage folders) into files in `ctx.out_dir` and
returns the metrics for the manifest; the runner handles skipping, atomic outputs and
MLflow runs, and the stage logs through `ctx.tracking` (never `mlflow` directly).
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from components.data import corpus
from components.export.checks import assert_portable
from components.models.saved import MODEL_FILE, load_trained
from components.text.vocab import Vocabulary, fit_vocabulary
from components.tracking.plots import plot_curves
from components.training import distribute, fit, schedules
from components.training.callbacks import TENSORBOARD_DIR, resumable_of, tensorboard_callback
from components.training.losses import MaskedTokenAccuracy, masked_cross_entropy
from pipeline.runner import Stage
from pipeline.tasks.translate import data
from pipeline.tasks.translate.bleu_callback import ValidationBleu
from pipeline.tasks.translate.data import data_source
from pipeline.tasks.translate.evaluation import (
    corpus_bleu,
    corpus_chrf,
    find_references,
    teacher_forced_metrics,
    translate_corpus,
)
from pipeline.tasks.translate.export import check_translator_reload, export_translator
from pipeline.tasks.translate.model import build_translator, uses_bf16_backward
from pipeline.tasks.translate.training import translator_callbacks
from pipeline.tasks.translate.translate_fn import make_translate_fn

SOURCE_VOCAB, TARGET_VOCAB = "source_vocab.json", "target_vocab.json"


def _vocabs(prepare_dir: Path) -> tuple[Vocabulary, Vocabulary]:
    return Vocabulary.load(prepare_dir / SOURCE_VOCAB), Vocabulary.load(prepare_dir / TARGET_VOCAB)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _unzip(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [s for s, _ in pairs], [t for _, t in pairs]


# ------------------------------------------------------------------ stages

def prepare(ctx) -> dict:
    """Build the TFDS dataset, fit vocabularies on the training split only, save them."""
    cfg = ctx.cfg
    src = data_source(cfg.data)
    splits = data.splits(src, cfg.data, ctx.out_dir)
    sizes = {name: corpus.count(ds) for name, ds in splits.items()}
    ctx.log(f"{src.description}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    vocabs = {}
    for lang, filename in ((cfg.data.source_lang, SOURCE_VOCAB), (cfg.data.target_lang, TARGET_VOCAB)):
        vocab = fit_vocabulary(corpus.texts(splits["train"], lang), kind=cfg.text.tokenizer,
                               lowercase=cfg.text.lowercase, max_size=cfg.text.max_vocab_size,
                               min_count=cfg.text.min_count)
        vocab.save(ctx.out_dir / filename)
        ctx.tracking.log_artifact(ctx.out_dir / filename, artifact_path="vocab")
        vocabs[lang] = len(vocab)
    ctx.log(f"vocabularies ({cfg.text.tokenizer}): " + ", ".join(f"{k} {v}" for k, v in vocabs.items()))
    info = {"dataset": src.description, "split_sizes": sizes, "data_fingerprint": src.fingerprint()}
    _write_json(ctx.out_dir / "data_info.json", info)
    corpus.log_splits(ctx.tracking, src, sizes, info["data_fingerprint"])
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
    splits = data.splits(data_source(cfg.data), cfg.data, prep)
    train_ds = data.batches_for_config(cfg, splits["train"], src_vocab, tgt_vocab, batch_size=cfg.train.batch_size,
                                  shuffle=True)
    val_ds = data.batches_for_config(cfg, splits["validation"], src_vocab, tgt_vocab,
                                batch_size=cfg.train.batch_size, shuffle=False)
    batches_per_epoch, tokens_per_epoch = fit.count_batches_and_tokens(train_ds)
    one_pass = train_ds
    if cfg.train.steps_per_epoch:
        train_ds = train_ds.repeat()
    total_steps = (cfg.train.steps_per_epoch or batches_per_epoch) * cfg.train.epochs

    if cfg.train.lr_schedule.startswith("warmup_"):
        warmup = schedules.warmup_steps(total_steps, cfg.train.warmup_steps, cfg.train.warmup_fraction)
        ctx.log(f"learning rate: {cfg.train.lr_schedule}, warm-up {warmup} of {total_steps} steps")
        warning = schedules.warmup_warning(warmup, total_steps, cfg.train.warmup_steps)
        if warning:
            ctx.log(warning)
    strategy = ctx.strategy or tf.distribute.get_strategy()
    if strategy.num_replicas_in_sync > 1:
        ctx.log(f"data-parallel on {strategy.num_replicas_in_sync} replicas ({type(strategy).__name__}); "
                f"global batch {cfg.train.batch_size}")
        train_ds = fit.shard_batches_across_workers(train_ds)
    shards = {}
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # One input-only pass: what this worker trains on, to check the shards partition the split.
        one_pass = fit.shard_batches_across_workers(one_pass)
        shards = {"worker": distribute.worker_name(), "split": distribute.data_summary(one_pass),
                  "local": distribute.local_shard_summary(strategy, one_pass)}
        ctx.log(f"{shards['worker']}: {shards['local']['rows']} of {shards['split']['rows']} training pairs per epoch")
    with strategy.scope():
        model = build_translator(cfg.model, len(src_vocab), len(tgt_vocab))
        model.compile(optimizer=fit.make_optimizer(cfg.train.optimizer_spec(), total_steps),
                      loss=masked_cross_entropy(cfg.train.label_smoothing),
                      metrics=[MaskedTokenAccuracy(), _perplexity_metric()],
                      jit_compile=cfg.train.jit_compile)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        distribute.patch_keras_for_multi_worker(model)
    params = model.count_params()
    ctx.log(f"model: {params:,} parameters; {tokens_per_epoch:,} target tokens per epoch")
    if cfg.model.backward_dtype == "auto":
        chosen = "bfloat16" if uses_bf16_backward("auto") else "float32 (no AVX512-BF16/AMX on this CPU)"
        ctx.log(f"gradient matmuls (model.backward_dtype=auto): {chosen}")
    ctx.tracking.log_param("model_parameters", params)

    monitor = cfg.train.early_stopping_metric
    n_bleu = cfg.train.val_bleu_examples or (500 if monitor == "val_bleu" else 0)
    val_bleu = None
    if n_bleu:
        val_pairs = splits["validation"].take(n_bleu)
        greedy = cfg.decode_spec().with_beam(1)  # val_bleu is greedy, whatever evaluate.beam_size says
        val_bleu = ValidationBleu(
            lambda m: make_translate_fn(m, src_vocab, tgt_vocab, greedy),
            corpus.texts(val_pairs, cfg.data.source_lang), corpus.texts(val_pairs, cfg.data.target_lang),
            cfg.evaluate.batch_size, cfg.evaluate.bleu_tokenize)
    callbacks = translator_callbacks(
        cfg.train, tokens_per_epoch=tokens_per_epoch, batches_per_epoch=batches_per_epoch,
        backup_dir=Path(cfg.work_dir) / cfg.name / f".train-backup-{ctx.fingerprint[:12]}",
        tracking_callback=ctx.tracking.keras_callback(), val_bleu=val_bleu, resume=ctx.resume_options(),
        log=ctx.log)
    if cfg.train.tensorboard:
        callbacks.append(tensorboard_callback(ctx.out_dir / TENSORBOARD_DIR, cfg.train.profile_batches))
    callbacks += ctx.callbacks  # after MLflow's: a sweep's pruner may stop the trial here
    with ctx.training():
        model.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs,
                  steps_per_epoch=cfg.train.steps_per_epoch, callbacks=callbacks, verbose=fit.progress_verbosity())
    if cfg.train.tensorboard:
        ctx.tracking.log_artifacts(ctx.out_dir / TENSORBOARD_DIR, artifact_path=TENSORBOARD_DIR)
    resumable = resumable_of(callbacks)
    hist = resumable.history  # every epoch, also those run before a restart
    model.save(ctx.out_dir / MODEL_FILE)
    fit.save_history(hist, ctx.out_dir / "history.json")
    plot_curves(hist, ctx.out_dir / "training_curves.png", title=cfg.name)
    ctx.tracking.log_artifact(ctx.out_dir / "training_curves.png", artifact_path="plots")
    best = min(range(len(hist["val_loss"])), key=lambda i: hist["val_loss"][i])
    if monitor == "val_bleu":
        best = max(range(len(hist["val_bleu"])), key=lambda i: hist["val_bleu"][i])
    metrics = {"final_train_loss": hist["loss"][-1], "best_val_loss": hist["val_loss"][best],
               "best_epoch": best + 1, "epochs_run": len(hist["loss"]),
               "train_tokens_per_sec": sum(hist["tokens_per_sec"]) / len(hist["tokens_per_sec"]),
               "model_parameters": params}
    if "val_bleu" in hist:
        metrics["best_val_bleu"] = hist["val_bleu"][best]
    resumable.clear()  # the output is complete: a rerun must not resume a finished training
    info = {"data_shards": shards} if shards else {}
    if resumable.resumed_from:
        info["resumed_from_epoch"] = resumable.resumed_from
    return {"metrics": metrics, "info": info}


def _perplexity_metric():
    import keras_hub

    from components.text.vocab import PAD_ID
    return keras_hub.metrics.Perplexity(from_logits=True, mask_token_id=PAD_ID, name="perplexity")


def evaluate(ctx) -> dict:
    """Test BLEU, token accuracy and perplexity; validation loss; samples file."""
    cfg = ctx.cfg
    prep = ctx.inputs["prepare"]
    src_vocab, tgt_vocab = _vocabs(prep)
    splits = data.splits(data_source(cfg.data), cfg.data, prep)
    model = load_trained(ctx.inputs["train"])
    metrics = {}
    for split, prefix in (("validation", "val"), ("test", "test")):
        ds = data.batches_for_config(cfg, splits[split], src_vocab, tgt_vocab, batch_size=cfg.evaluate.batch_size,
                                shuffle=False)
        for key, value in teacher_forced_metrics(model, ds).items():
            metrics[f"{prefix}_{key}"] = value
    # Every split's (source, target) texts, read once: the test set, the training sample and the
    # examples' human references all come from here.
    pairs = {name: list(zip(corpus.texts(ds, cfg.data.source_lang), corpus.texts(ds, cfg.data.target_lang)))
             for name, ds in splits.items()}
    sources, references = _unzip(pairs["test"][: cfg.evaluate.max_test_examples])
    translate_fn = make_translate_fn(model, src_vocab, tgt_vocab, cfg.decode_spec())
    hypotheses = translate_corpus(translate_fn, sources, cfg.evaluate.batch_size)
    bleu, signature = corpus_bleu(hypotheses, references, cfg.evaluate.bleu_tokenize)
    metrics["test_bleu"] = bleu
    metrics["test_chrf"], chrf_signature = corpus_chrf(hypotheses, references)
    ctx.log(f"test BLEU {bleu:.2f} ({signature}); test chrF {metrics['test_chrf']:.2f}; "
            f"test perplexity {metrics['test_perplexity']:.2f}; "
            f"val loss {metrics['val_loss']:.3f}")
    with (ctx.out_dir / "samples.jsonl").open("w", encoding="utf-8") as f:
        for s, r, h in zip(sources, references, hypotheses):
            f.write(json.dumps({"source": s, "reference": r, "hypothesis": h}, ensure_ascii=False) + "\n")
    if cfg.evaluate.train_sample_size:
        # On a tiny corpus the test score says little; how well training pairs are fit says more.
        train_src, train_ref = _unzip(pairs["train"][: cfg.evaluate.train_sample_size])
        train_hyp = translate_corpus(translate_fn, train_src, cfg.evaluate.batch_size)
        metrics["train_sample_bleu"], _ = corpus_bleu(train_hyp, train_ref, cfg.evaluate.bleu_tokenize)
        ctx.log(f"BLEU on {len(train_src)} training pairs: {metrics['train_sample_bleu']:.2f}")
    examples = translate_corpus(translate_fn, list(cfg.evaluate.examples), cfg.evaluate.batch_size)
    example_refs = find_references(list(cfg.evaluate.examples), pairs)
    _write_json(ctx.out_dir / "examples.json",
                {s: {"hypothesis": h, **example_refs.get(s, {})} for s, h in zip(cfg.evaluate.examples, examples)})
    _write_json(ctx.out_dir / "hypotheses.json", hypotheses)
    for name in ("samples.jsonl", "examples.json"):
        ctx.tracking.log_artifact(ctx.out_dir / name, artifact_path="evaluation")
    ctx.tracking.set_tag("bleu_signature", signature)
    ctx.log("test samples (source -> hypothesis | reference):")
    for s, r, h in list(zip(sources, references, hypotheses))[: cfg.evaluate.num_samples]:
        ctx.log(f"  {s}  ->  {h}  |  {r}")
    return {"metrics": metrics, "info": {"bleu_signature": signature, "chrf_signature": chrf_signature,
                                         "example_references": example_refs}}


def export(ctx) -> dict:
    """SavedModel in TF Serving layout; checked to be portable and to reload to the same decode."""
    cfg = ctx.cfg
    src_vocab, tgt_vocab = _vocabs(ctx.inputs["prepare"])
    model = load_trained(ctx.inputs["train"])
    base = Path(cfg.export.export_dir) / cfg.model_name
    spec = cfg.decode_spec()
    path = export_translator(model, src_vocab, tgt_vocab, spec, base,
                             metadata={"task": "translate", "config": cfg.name, "model_name": cfg.model_name,
                                       "source_lang": cfg.data.source_lang, "target_lang": cfg.data.target_lang,
                                       "dataset": data_source(cfg.data).description,
                                       "bleu_tokenize": cfg.evaluate.bleu_tokenize,
                                       "beam_size": spec.beam_size})
    ctx.extra_outputs.append(str(path.resolve()))
    assert_portable(path)
    examples = list(cfg.evaluate.examples)
    got = check_translator_reload(path, make_translate_fn(model, src_vocab, tgt_vocab, spec), examples)
    _write_json(ctx.out_dir / "export.json", {"path": str(path.resolve()), "version": int(path.name),
                                              "model_name": cfg.model_name, "examples": dict(zip(examples, got))})
    ctx.tracking.log_artifacts(path, artifact_path="saved_model")
    from components.tracking.model_logging import log_export_model  # issue 19: an MLflow Model too
    ctx.log(f"MLflow Model: {log_export_model(ctx.tracking, path, examples)}")
    ctx.log(f"SavedModel: {path} (version {path.name})")
    for src, hyp in zip(examples, got):
        ctx.log(f"  {src}  ->  {hyp}")
    return {"metrics": {"export_version": int(path.name)},
            "info": {"path": str(path.resolve()), "examples": dict(zip(examples, got))}}


def summary(manifests: dict) -> list[str]:
    """The console lines after a run: headline metrics, the SavedModel and its examples."""
    lines = []
    ev = manifests.get("evaluate", {}).get("metrics", {})
    if "test_bleu" in ev:
        chrf = f" | test chrF {ev['test_chrf']:.2f}" if "test_chrf" in ev else ""
        lines.append(f"test BLEU {ev['test_bleu']:.2f}{chrf} | test perplexity {ev['test_perplexity']:.2f} | "
                     f"val loss {ev['val_loss']:.3f}")
    refs = manifests.get("evaluate", {}).get("info", {}).get("example_references", {})
    ex = manifests.get("export", {}).get("info", {})
    if ex.get("path"):
        lines.append(f"SavedModel: {ex['path']}")
        lines.append("examples (source -> model | reference, split):")
        for src, hyp in ex.get("examples", {}).items():
            ref = refs.get(src)
            lines.append(f"  {src}  ->  {hyp}" + (f"  |  {ref['reference']}  ({ref['split']})" if ref else
                                                  "  |  (not in the corpus)"))
    return lines


def _data_fingerprint(cfg) -> str:
    return data_source(cfg.data).fingerprint()


STAGES = [
    Stage("prepare", prepare, sections=("data", "text"), data_fingerprint=_data_fingerprint),
    Stage("train", train, deps=("prepare",), sections=("data", "text", "model", "train")),
    Stage("evaluate", evaluate, deps=("prepare", "train"), sections=("data", "text", "evaluate")),
    # Export reads only these evaluate.* keys: other evaluate changes don't make a new version.
    Stage("export", export, deps=("prepare", "train"), sections=("text", "export"),
          keys=("evaluate.max_decode_len", "evaluate.beam_size", "evaluate.length_penalty",
                "evaluate.bleu_tokenize", "evaluate.examples")),
]
