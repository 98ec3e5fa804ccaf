"""The LM SavedModel: signatures, core ops only, and a fresh process agreeing with the in-process model."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.export.servable import graph_op_types
from components.models.cudnn import lstm_layers
from components.text.vocab import TextEncoder
from pipeline.tasks.lm.config import LMModelConfig
from pipeline.tasks.lm.data import fit_lm_vocabulary, terminator_id, text_ids
from pipeline.tasks.lm.evaluation import keras_hub_generate, make_sampler
from pipeline.tasks.lm.export import LMServing, export_language_model
from pipeline.tasks.lm.model import build_language_model, zero_states
from tests.support.subprocess_run import run_isolated_python

LINES = ["First Citizen:", "Before we proceed any further, hear me speak.", "",
         "All:", "Speak, speak.", "", "First Citizen:", "You are all resolved rather to die than to famish?"]
PROMPTS = ["First Citizen:", "", "All:\n", "Speak, unknownword"]
TEXTS = ["Speak, speak.", "", "All:\nSpeak.\n", "zzz qqq"]


@pytest.fixture(scope="module", params=["whitespace", "char"])
def exported(request, tmp_path_factory):
    kind = request.param
    vocab = fit_lm_vocabulary(LINES, kind)
    keras.utils.set_random_seed(7)
    cfg = LMModelConfig(embedding_dim=12, units=16, layers=2, dropout=0.0, tie_weights=(kind == "char"))
    model = build_language_model(cfg, len(vocab))
    # Sharpen the random model a little so greedy choices are not near-ties.
    out = model.layers[-1]
    for w in out.weights:
        w.assign(w * 4.0)
    path = export_language_model(model, vocab, tmp_path_factory.mktemp("exports") / f"lm_{kind}")
    return kind, vocab, model, path


def _gen_args(n, tokens=7, temperature=0.0, top_k=0):
    return dict(prompt=tf.constant(PROMPTS[:n]), max_tokens=tf.fill([n], tokens),
                temperature=tf.fill([n], float(temperature)), top_k=tf.fill([n], top_k))


def test_layout_signatures_and_specs(exported):
    _, _, _, path = exported
    assert path.name == "1" and (path / "saved_model.pb").is_file()
    loaded = tf.saved_model.load(str(path))
    assert {"serving_default", "generate", "generate_seeded", "score"} <= set(loaded.signatures)
    gen = loaded.signatures["generate"]
    specs = gen.structured_input_signature[1]
    assert {k: (v.dtype, v.shape.as_list()) for k, v in specs.items()} == {
        "prompt": (tf.string, [None]), "max_tokens": (tf.int32, [None]),
        "temperature": (tf.float32, [None]), "top_k": (tf.int32, [None])}
    assert {k: (v.dtype, v.shape.as_list()) for k, v in gen.structured_outputs.items()} == \
        {"outputs": (tf.string, [None])}
    score = loaded.signatures["score"]
    assert {k: (v.dtype, v.shape.as_list()) for k, v in score.structured_input_signature[1].items()} == \
        {"inputs": (tf.string, [None])}
    outs = {k: (v.dtype, v.shape.as_list()) for k, v in score.structured_outputs.items()}
    assert outs["log_likelihood"] == (tf.float32, [None]) and outs["perplexity"] == (tf.float32, [None])
    default = loaded.signatures["serving_default"].structured_input_signature[1]
    assert set(default) == set(specs)


def test_graph_has_only_portable_ops(exported):
    _, _, model, path = exported
    ops = graph_op_types(path)
    assert not [op for op in ops if op.startswith("CudnnRNN")]
    assert not [op for op in ops if op.startswith("Xla")]  # XLA-only ops would not run in TF Serving
    assert "StringSplitV2" in ops or "UnicodeDecodeWithOffsets" in ops  # the tokenizer is in the graph
    assert {"HashTableV2", "While"} <= ops or {"HashTableV2", "StatelessWhile"} <= ops
    for layer in lstm_layers(model):  # tracing with the generic kernel left the model cuDNN-eligible
        assert layer.use_cudnn == "auto"


def _manual_scores(model, vocab, texts):
    """log-likelihood straight from the Keras model, one text at a time, in numpy."""
    enc = TextEncoder(vocab)
    out = []
    for row in text_ids(enc, tf.constant(texts), terminator_id(vocab), terminate_last=True).to_list():
        x = np.array([row[:-1]], "int32")
        logits = np.asarray(model([x, *zero_states(model, 1)])[0][0], "float64")
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        ll = float(sum(logp[t, tok] for t, tok in enumerate(row[1:])))
        out.append((ll, len(row) - 1))
    return out


def test_in_process_serving_matches_the_keras_model(exported):
    _, vocab, model, _ = exported
    local = LMServing(model, vocab)
    got = {k: v.numpy() for k, v in local.score(tf.constant(TEXTS)).items()}
    for i, (ll, n) in enumerate(_manual_scores(model, vocab, TEXTS)):
        assert got["log_likelihood"][i] == pytest.approx(ll, rel=1e-4, abs=1e-3)
        assert got["tokens"][i] == n
        assert got["perplexity"][i] == pytest.approx(np.exp(-ll / n), rel=1e-4)
    # The serving loop's greedy text equals keras-hub's GreedySampler driving the same model.
    served = [s.decode("utf-8") for s in local.generate(**_gen_args(len(PROMPTS)))["outputs"].numpy()]
    assert served == keras_hub_generate(model, vocab, PROMPTS, 7, make_sampler(0.0, 0))
    assert all(s.startswith(p) for s, p in zip(served, PROMPTS))


def test_generation_controls(exported):
    kind, vocab, model, _ = exported
    local = LMServing(model, vocab)
    greedy = local.generate(**_gen_args(4))["outputs"].numpy()
    # top-k = 1 is greedy at any temperature.
    assert (local.generate(**_gen_args(4, temperature=2.0, top_k=1))["outputs"].numpy() == greedy).all()
    # Per-row max_tokens: 0 returns the prompt; ids count exactly.
    ids = local.generate_ids(tf.constant(PROMPTS), tf.constant([0, 1, 5, 9]), tf.zeros([4]),
                             tf.zeros([4], tf.int32))
    assert ids.row_lengths().numpy().tolist() == [0, 1, 5, 9]
    args = dict(prompt=tf.constant(PROMPTS), max_tokens=tf.constant([0, 3, 3, 3]),
                temperature=tf.zeros([4]), top_k=tf.zeros([4], tf.int32))
    assert local.generate(**args)["outputs"].numpy()[0].decode() == PROMPTS[0]
    # Seeded sampling is reproducible and independent of the other rows in the batch.
    seeded = dict(prompt=tf.constant(PROMPTS), max_tokens=tf.fill([4], 8), temperature=tf.fill([4], 1.0),
                  top_k=tf.zeros([4], tf.int32), seed=tf.constant([1, 2, 3, 4]))
    a = local.generate_seeded(**seeded)["outputs"].numpy()
    b = local.generate_seeded(**seeded)["outputs"].numpy()
    alone = local.generate_seeded(prompt=tf.constant(PROMPTS[2:3]), max_tokens=tf.constant([8]),
                                  temperature=tf.constant([1.0]), top_k=tf.constant([0]),
                                  seed=tf.constant([3]))["outputs"].numpy()
    assert (a == b).all() and alone[0] == a[2]
    assert local.generate(prompt=tf.constant([], tf.string), max_tokens=tf.constant([], tf.int32),
                          temperature=tf.constant([], tf.float32), top_k=tf.constant([], tf.int32)
                          )["outputs"].shape == (0,)


def test_reloaded_savedmodel_in_a_fresh_process_agrees(exported, tmp_path):
    _, vocab, model, path = exported
    local = LMServing(model, vocab)
    n = len(PROMPTS)
    expected_greedy = [s.decode("utf-8") for s in local.generate(**_gen_args(n))["outputs"].numpy()]
    seeded_args = dict(max_tokens=[6] * n, temperature=[0.9] * n, top_k=[3] * n, seed=[11, 12, 13, 14])
    expected_seeded = [s.decode("utf-8") for s in local.generate_seeded(
        prompt=tf.constant(PROMPTS), **{k: tf.constant(v, tf.float32 if k == "temperature" else tf.int32)
                                        for k, v in seeded_args.items()})["outputs"].numpy()]
    expected_score = local.score(tf.constant(TEXTS))
    code = f"""
import json, sys, tensorflow as tf
m = tf.saved_model.load({str(path)!r})
prompts = tf.constant({PROMPTS!r})
n = {n}
greedy = m.signatures["serving_default"](prompt=prompts, max_tokens=tf.fill([n], 7),
                                          temperature=tf.zeros([n]), top_k=tf.zeros([n], tf.int32))["outputs"]
a = {seeded_args!r}
seeded = m.signatures["generate_seeded"](prompt=prompts, max_tokens=tf.constant(a["max_tokens"]),
    temperature=tf.constant(a["temperature"], tf.float32), top_k=tf.constant(a["top_k"]),
    seed=tf.constant(a["seed"]))["outputs"]
score = m.signatures["score"](inputs=tf.constant({TEXTS!r}))
print(json.dumps({{"greedy": [s.decode("utf-8") for s in greedy.numpy()],
                  "seeded": [s.decode("utf-8") for s in seeded.numpy()],
                  "log_likelihood": score["log_likelihood"].numpy().tolist(),
                  "perplexity": score["perplexity"].numpy().tolist(),
                  "project_imported": any(k.split(".")[0] in ("pipeline", "components", "keras_hub")
                                          for k in sys.modules)}}))
"""
    proc = run_isolated_python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project_imported"] is False
    assert result["greedy"] == expected_greedy
    assert result["seeded"] == expected_seeded
    np.testing.assert_allclose(result["log_likelihood"], expected_score["log_likelihood"].numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(result["perplexity"], expected_score["perplexity"].numpy(), rtol=1e-4)


def test_export_writes_tf_serving_warmup_requests_that_replay(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    from components.serving.servable import load_servable
    from components.serving.warmup import run_warmup

    _, _, _, path = exported
    warmup = path / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.is_file()
    logs = [prediction_log_pb2.PredictionLog.FromString(r)
            for r in tf.data.TFRecordDataset(str(warmup)).as_numpy_iterator()]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == {
        "serving_default", "generate", "generate_seeded", "score"}
    # The server's own replay (what runs before a version takes traffic) succeeds on the export.
    assert run_warmup(load_servable("lm", 1, str(path))) == len(logs)
