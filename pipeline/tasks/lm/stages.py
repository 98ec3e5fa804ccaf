"""The language-model pipeline: prepare -> train -> evaluate -> export.

Each function turns (config, upstream stage folders) into files in `ctx.out_dir` and
returns the metrics for the manifest; the runner handles skipping, atomic outputs and
MLflow runs, and the stage logs through `ctx.tracking` (never `mlflow` directly).
"""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from components.data import corpus
from components.export.checks import assert_portable
from components.models.saved import MODEL_FILE, load_trained
from components.text.vocab import Vocabulary
from components.tracking.plots import plot_curves
from components.training import distribute, fit
from components.training.callbacks import TENSORBOARD_DIR, resumable_of, tensorboard_callback
from pipeline.runner import Stage
from pipeline.tasks.lm import data, sampled_softmax
from pipeline.tasks.lm.data import (
    data_source,
    distribute_stream_blocks,
    encode_stream,
    fit_lm_vocabulary,
    is_char_level,
    targets_per_pass,
    window_dataset,
    window_starts,
)
from pipeline.tasks.lm.evaluation import keras_hub_generate, make_sampler, stream_metrics
from pipeline.tasks.lm.export import LMServing, check_lm_reload, export_language_model
from pipeline.tasks.lm.model import build_language_model, copy_weights
from pipeline.tasks.lm.tbptt import StreamValidation
from pipeline.tasks.lm.training import lm_callbacks

VOCAB = "vocab.json"
SPLITS = ("train", "validation", "test")


# ------------------------------------------------------------------ helpers

def _stream(prepare_dir: Path, split: str) -> np.ndarray:
    return np.load(prepare_dir / "streams" / f"{split}.npy")


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _char(cfg) -> bool:
    return is_char_level(cfg.text.tokenizer)


# ------------------------------------------------------------------ stages

def prepare(ctx) -> dict:
    """Build the TFDS dataset, fit the vocabulary on the training lines, save the token streams."""
    cfg = ctx.cfg
    src = data_source(cfg.data)
    lines = data.lines(src, cfg.data, ctx.out_dir)
    vocab = fit_lm_vocabulary(lines["train"], cfg.text.tokenizer, lowercase=cfg.text.lowercase,
                              min_count=cfg.text.min_count, max_size=cfg.text.max_vocab_size)
    vocab.save(ctx.out_dir / VOCAB)
    ctx.tracking.log_artifact(ctx.out_dir / VOCAB, artifact_path="vocab")
    (ctx.out_dir / "streams").mkdir()
    sizes, unk = {}, {}
    for split in SPLITS:
        stream = encode_stream(lines[split], vocab)
        np.save(ctx.out_dir / "streams" / f"{split}.npy", stream)
        sizes[split] = int(len(stream))
        unk[split] = float(np.mean(stream == 1)) if len(stream) else 0.0
    ctx.log(f"{src.description}: lines " + ", ".join(f"{k} {len(v)}" for k, v in lines.items()))
    ctx.log(f"{cfg.text.tokenizer} tokens (line ends included): "
            + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
            + f"; vocabulary {len(vocab):,}; <unk> rate val {unk['validation']:.2%}")
    info = {"dataset": src.description, "lines": {k: len(v) for k, v in lines.items()},
            "tokens": sizes, "unk_rate": unk, "vocab_size": len(vocab),
            "data_fingerprint": src.fingerprint()}
    _write_json(ctx.out_dir / "data_info.json", info)
    corpus.log_splits(ctx.tracking, src, info["lines"], info["data_fingerprint"])
    metrics = {f"{k}_tokens": v for k, v in sizes.items()}
    metrics.update({"vocab_size": len(vocab), "val_unk_rate": unk["validation"]})
    return {"metrics": metrics, "info": info}


def train(ctx) -> dict:
    """Truncated BPTT over contiguous streams; keeps the best weights by validation perplexity."""
    cfg = ctx.cfg
    tc = cfg.train
    keras.utils.set_random_seed(cfg.seed)
    prep = ctx.inputs["prepare"]
    vocab = Vocabulary.load(prep / VOCAB)
    train_stream, val_stream = _stream(prep, "train"), _stream(prep, "validation")
    train_ds = window_dataset(train_stream, tc.batch_size, tc.seq_len)
    n_windows = len(window_starts(len(train_stream) // tc.batch_size, tc.seq_len))
    tokens_per_epoch = targets_per_pass(len(train_stream), tc.batch_size)
    if tc.steps_per_epoch and tc.steps_per_epoch < n_windows:
        # The same first windows every epoch: states still carry window to window.
        train_ds = train_ds.take(tc.steps_per_epoch)
        tokens_per_epoch = tc.batch_size * tc.steps_per_epoch * tc.seq_len  # all full windows

    sampled = cfg.model.softmax == "sampled"
    if sampled:  # the training build takes the targets as input and outputs its loss
        train_ds = sampled_softmax.with_targets(train_ds)
    strategy = ctx.strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if replicas > 1 and sampled:
        raise ValueError("model.softmax=sampled is not supported with more than one replica yet")
    if replicas > 1:
        ctx.log(f"data-parallel on {replicas} replicas ({type(strategy).__name__}): "
                f"{tc.batch_size // replicas} streams each, state carried per replica")
        train_ds = distribute_stream_blocks(strategy, train_ds, tc.batch_size)
    with strategy.scope():
        # Stateful layers hold one state row per stream on their replica.
        model = build_language_model(cfg.model, len(vocab), stateful=True, batch_size=tc.batch_size // replicas)
        model.compile(optimizer=fit.make_optimizer(tc.optimizer_spec()),
                      loss=(sampled_softmax.per_token_loss if sampled
                            else keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                      # Full softmax: the training perplexity is exp(loss) (callbacks.PerplexityFromLoss),
                      # not a metric that would run a second softmax over the logits every step.
                      metrics=[sampled_softmax.LossPerplexity()] if sampled else [],
                      jit_compile=tc.jit_compile,
                      steps_per_execution=tc.steps_per_execution)
        eval_model = build_language_model(cfg.model, len(vocab))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        distribute.patch_keras_for_multi_worker(model)
    params = model.count_params()
    ctx.log(f"model: {params:,} parameters; {tokens_per_epoch:,} target tokens per epoch "
            f"({tc.batch_size} streams x windows of {tc.seq_len})")
    ctx.tracking.log_param("model_parameters", params)

    # Backups are keyed by fingerprint: a killed run resumes, a changed config starts fresh.
    root = Path(cfg.work_dir) / cfg.name
    backup_dir = root / f".train-backup-{ctx.fingerprint[:12]}"
    # The best weights are kept in the checkpoints (StreamValidation.resume_state).
    validation = StreamValidation(eval_model, val_stream, tc.val_batch_size, max(tc.seq_len, 100), _char(cfg),
                                  log=ctx.log)
    callbacks = lm_callbacks(tc, tokens_per_epoch=tokens_per_epoch, backup_dir=backup_dir,
                             validation=validation, tracking_callback=ctx.tracking.keras_callback(),
                             resume=ctx.resume_options())
    if cfg.train.tensorboard:
        callbacks.append(tensorboard_callback(ctx.out_dir / TENSORBOARD_DIR, cfg.train.profile_batches))
    callbacks += ctx.callbacks  # after MLflow's: a sweep's pruner may stop the trial here
    with ctx.training():
        model.fit(train_ds, epochs=tc.epochs, callbacks=callbacks, shuffle=False, verbose=fit.progress_verbosity())
    if cfg.train.tensorboard:
        ctx.tracking.log_artifacts(ctx.out_dir / TENSORBOARD_DIR, artifact_path=TENSORBOARD_DIR)
    resumable = resumable_of(callbacks)
    hist = resumable.history  # every epoch, also those run before a restart
    # `validation` restored the best weights into `model` at train end; save the inference build.
    copy_weights(model, eval_model)
    eval_model.save(ctx.out_dir / MODEL_FILE)
    fit.save_history(hist, ctx.out_dir / "history.json")
    plot_curves(hist, ctx.out_dir / "training_curves.png", title=cfg.name)
    ctx.tracking.log_artifact(ctx.out_dir / "training_curves.png", artifact_path="plots")
    best = min(range(len(hist["val_perplexity"])), key=lambda i: hist["val_perplexity"][i])
    metrics = {"final_train_loss": hist["loss"][-1], "final_train_perplexity": hist["perplexity"][-1],
               "best_val_perplexity": hist["val_perplexity"][best], "best_val_loss": hist["val_loss"][best],
               "best_epoch": best + 1, "epochs_run": len(hist["loss"]),
               "train_tokens_per_sec": sum(hist["tokens_per_sec"]) / len(hist["tokens_per_sec"]),
               "train_seconds": sum(hist["epoch_seconds"]), "model_parameters": params}
    if _char(cfg):
        metrics["best_val_bpc"] = hist["val_bpc"][best]
    resumable.clear()  # the output is complete: a rerun must not resume a finished training
    info = {"learning_rates": hist.get("learning_rate", [])}
    if resumable.resumed_from:
        info["resumed_from_epoch"] = resumable.resumed_from
    return {"metrics": metrics, "info": info}


def evaluate(ctx) -> dict:
    """Validation and test perplexity (and bpc) with state carried; generated samples."""
    cfg = ctx.cfg
    ec = cfg.evaluate
    prep = ctx.inputs["prepare"]
    vocab = Vocabulary.load(prep / VOCAB)
    model = load_trained(ctx.inputs["train"])
    metrics = {}
    for split, prefix in (("validation", "val"), ("test", "test")):
        result = stream_metrics(model, _stream(prep, split), ec.batch_size, ec.seq_len, _char(cfg))
        for key, value in result.items():
            metrics[f"{prefix}_{key}"] = value
    line = f"test perplexity {metrics['test_perplexity']:.2f}, val perplexity {metrics['val_perplexity']:.2f}"
    if _char(cfg):
        line += f"; test bpc {metrics['test_bpc']:.3f}, val bpc {metrics['val_bpc']:.3f}"
    ctx.log(line + f" ({metrics['test_tokens']:,} test tokens, eval batch {ec.batch_size})")

    samples = {}
    if ec.prompts and ec.sample_tokens:
        sampler = make_sampler(ec.temperature, ec.top_k, seed=cfg.seed, vocab_size=len(vocab))
        texts = keras_hub_generate(model, vocab, list(ec.prompts), ec.sample_tokens, sampler)
        greedy = keras_hub_generate(model, vocab, list(ec.prompts), ec.sample_tokens, make_sampler(0, 0))
        samples = {"settings": {"temperature": ec.temperature, "top_k": ec.top_k, "tokens": ec.sample_tokens,
                                "sampler": type(sampler).__name__, "seed": cfg.seed},
                   "samples": dict(zip(ec.prompts, texts)), "greedy": dict(zip(ec.prompts, greedy))}
        _write_json(ctx.out_dir / "samples.json", samples)
        ctx.tracking.log_artifact(ctx.out_dir / "samples.json", artifact_path="evaluation")
        ctx.tracking.log_text("\n\n----\n\n".join(texts), "evaluation/samples.txt")
        ctx.log(f"sample ({type(sampler).__name__}, temperature {ec.temperature}, top-k {ec.top_k}):")
        for line in texts[0].splitlines()[:6]:
            ctx.log(f"  | {line}")
    _write_json(ctx.out_dir / "metrics.json", metrics)
    first = next(iter(samples.get("samples", {}).values()), "")
    return {"metrics": metrics, "info": {"sample": first, "char_level": _char(cfg)}}


def export(ctx) -> dict:
    """SavedModel in TF Serving layout; checked to reload and match the in-process model."""
    cfg = ctx.cfg
    vocab = Vocabulary.load(ctx.inputs["prepare"] / VOCAB)
    model = load_trained(ctx.inputs["train"])
    base = Path(cfg.export.export_dir) / cfg.model_name
    path = export_language_model(model, vocab, base, metadata={
        "task": "lm", "config": cfg.name, "model_name": cfg.model_name, "dataset": data_source(cfg.data).description,
        "tokenizer": cfg.text.tokenizer, "char_level": _char(cfg), "vocab_size": len(vocab)})
    ctx.extra_outputs.append(str(path.resolve()))
    assert_portable(path)
    # Check the round trip now rather than in production: reload and compare.
    prompts = list(cfg.evaluate.prompts) or [""]
    checked = check_lm_reload(path, LMServing(model, vocab), prompts, cfg.evaluate.sample_tokens)
    got, got_score = checked["generated"], checked["log_likelihood"]
    examples = dict(zip(prompts, got))
    _write_json(ctx.out_dir / "export.json", {
        "path": str(path.resolve()), "version": int(path.name), "model_name": cfg.model_name,
        "signatures": checked["signatures"], "greedy_examples": examples,
        "prompt_log_likelihood": dict(zip(prompts, got_score))})
    ctx.tracking.log_artifacts(path, artifact_path="saved_model")
    from components.tracking.model_logging import log_export_model  # issue 19: an MLflow Model too
    ctx.log(f"MLflow Model: {log_export_model(ctx.tracking, path, prompts)}")
    ctx.log(f"SavedModel: {path} (version {path.name}; signatures {', '.join(checked['signatures'])})")
    return {"metrics": {"export_version": int(path.name)},
            "info": {"path": str(path.resolve()), "greedy_examples": examples}}


def summary(manifests: dict) -> list[str]:
    """The console lines after a run: perplexity (bpc), speed, a sample, the SavedModel."""
    lines = []
    ev = manifests.get("evaluate", {}).get("metrics", {})
    if "test_perplexity" in ev:
        line = f"test perplexity {ev['test_perplexity']:.2f} | val perplexity {ev['val_perplexity']:.2f}"
        if "test_bpc" in ev:
            line += f" | test bpc {ev['test_bpc']:.3f} | val bpc {ev['val_bpc']:.3f}"
        tr = manifests.get("train", {}).get("metrics", {})
        if "train_tokens_per_sec" in tr:
            line += f" | train {tr['train_tokens_per_sec']:,.0f} tokens/s"
        lines.append(line)
        sample = manifests.get("evaluate", {}).get("info", {}).get("sample")
        if sample:
            lines.append("sample:")
            lines.extend(f"  | {s}" for s in sample.splitlines()[:8])
    ex = manifests.get("export", {}).get("info", {})
    if ex.get("path"):
        lines.append(f"SavedModel: {ex['path']}")
    return lines


def _data_fingerprint(cfg) -> str:
    return data_source(cfg.data).fingerprint()


STAGES = [
    Stage("prepare", prepare, sections=("data", "text"), data_fingerprint=_data_fingerprint),
    Stage("train", train, deps=("prepare",), sections=("model", "train")),
    Stage("evaluate", evaluate, deps=("prepare", "train"), sections=("evaluate",)),
    # Export reads only these evaluate.* keys: other evaluate changes don't make a new version.
    Stage("export", export, deps=("prepare", "train"), sections=("export",),
          keys=("evaluate.prompts", "evaluate.sample_tokens")),
]

