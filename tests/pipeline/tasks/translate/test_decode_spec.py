"""DecodeSpec: built once from the config, and what the translate function and the export decode with."""
import keras
import pytest

from pipeline.config import load_config
from pipeline.tasks.translate.decode_spec import DecodeSpec


def test_built_from_text_and_evaluate():
    cfg = load_config("configs/translate_en_fr.yaml",
                      ["evaluate.beam_size=4", "evaluate.length_penalty=0.8", "text.reverse_source=true"])
    spec = cfg.decode_spec()
    assert spec == DecodeSpec(max_source_len=32, max_decode_len=40, beam_size=4, length_penalty=0.8,
                              reverse_source=True)
    assert load_config("configs/translate_en_fr.yaml").decode_spec() == DecodeSpec(32, 40, 1, 0.6, False)


def test_with_beam_changes_only_the_width():
    spec = DecodeSpec(32, 40, beam_size=4, length_penalty=0.8, reverse_source=True)
    greedy = spec.with_beam(1)
    assert greedy == DecodeSpec(32, 40, 1, 0.8, True)
    assert spec.beam_size == 4  # frozen: with_beam returns a copy
    with pytest.raises(AttributeError):
        spec.beam_size = 2


SOURCES = ["the cat sat", "a dog ran far away", "the dog"]


def test_export_signatures_decode_with_the_spec():
    """`translate` is the configured width, `translate_greedy` width 1, `tokenize_source` the framing."""
    import tensorflow as tf

    from components.text.vocab import EOS_ID, fit_vocabulary
    from pipeline.tasks.translate.config import TranslatorModelConfig
    from pipeline.tasks.translate.export import TranslatorServing
    from pipeline.tasks.translate.model import build_translator
    from pipeline.tasks.translate.translate_fn import make_translate_fn

    src = fit_vocabulary(SOURCES)
    tgt = fit_vocabulary(["le chat", "un chien", "le chien court"])
    keras.utils.set_random_seed(3)
    model = build_translator(TranslatorModelConfig(embedding_dim=8, units=16, dropout=0.0, attention="dot"),
                             len(src), len(tgt))
    spec = DecodeSpec(max_source_len=4, max_decode_len=6, beam_size=3, length_penalty=0.6, reverse_source=True)
    serving = TranslatorServing(model, src, tgt, spec)
    inputs = tf.constant(SOURCES)

    beams = serving.translate_beams(inputs)
    assert beams["beams"].shape == (3, 3)
    assert serving.translate(inputs)["outputs"].numpy().tolist() == beams["outputs"].numpy().tolist()
    assert (serving.translate(inputs)["outputs"].numpy().tolist()
            == make_translate_fn(model, src, tgt, spec)(inputs).numpy().tolist())
    assert (serving.translate_greedy(inputs)["outputs"].numpy().tolist()
            == make_translate_fn(model, src, tgt, spec.with_beam(1))(inputs).numpy().tolist())

    sentence = tf.constant(["a dog ran far away"])
    forward = serving.source_encoder.encode(sentence).to_list()[0]
    ids = serving.tokenize_source(sentence)["ids"].numpy()[0].tolist()
    assert ids == forward[:3][::-1] + [EOS_ID]  # max_source_len 4: 3 tokens, reversed as trained, + <eos>
