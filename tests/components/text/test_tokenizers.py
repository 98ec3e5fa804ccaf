import tensorflow as tf

from components.text.tokenizers import char_pieces, join_char_pieces, join_word_pieces, word_pieces
from components.text.vocab import EOS_ID, PAD_ID, TextEncoder, Vocabulary, fit_vocabulary

URDU = ["آپ کیسے ہیں؟", "آپ کیسے ہو ؟", "ہم جیت گئے۔", "میں نے اسے ٹام کو دیا"]
MIXED = ["How are you?", "I don't know...", "Tom's \"quoted\" (x).", "?start", "a#b ##c", "٢٠٢٤ سال"]


def _strings(t):
    return [s.decode("utf-8") for s in t.numpy()]


def test_word_pieces_split_punctuation_and_mark_glue():
    pieces = word_pieces(tf.constant(["How are you?", "آپ کیسے ہیں؟", "آپ کیسے ہو ؟"])).to_list()
    assert pieces[0] == [b"How", b"are", b"you", b"##?"]
    assert [p.decode() for p in pieces[1]] == ["آپ", "کیسے", "ہیں", "##؟"]
    assert [p.decode() for p in pieces[2]] == ["آپ", "کیسے", "ہو", "؟"]


def test_unicode_spaces_split_words_like_a_space():
    texts = tf.constant(["Cours\u202f!", "Ein\u00a0Hund", "a\u3000b\u2009c"])
    assert [[p.decode() for p in row] for row in word_pieces(texts).to_list()] == [
        ["Cours", "!"], ["Ein", "Hund"], ["a", "b", "c"]]


def test_word_round_trip_is_byte_exact():
    texts = URDU + MIXED
    assert _strings(join_word_pieces(word_pieces(tf.constant(texts)))) == texts


def test_char_round_trip_is_byte_exact():
    texts = URDU + MIXED + ["line one\nline two\n"]
    assert _strings(join_char_pieces(char_pieces(tf.constant(texts)))) == texts


def test_encoder_round_trips_urdu_through_ids():
    vocab = fit_vocabulary(URDU, kind="word")
    enc = TextEncoder(vocab)
    ids = enc.encode(tf.constant(URDU))
    decoded = _strings(enc.decode(ids.to_tensor(PAD_ID)))
    assert decoded == URDU
    assert [d.encode("utf-8") for d in decoded] == [u.encode("utf-8") for u in URDU]


def test_decode_stops_at_eos_and_maps_unknowns():
    vocab = fit_vocabulary(["a b c"], kind="word")
    enc = TextEncoder(vocab)
    a, b = vocab.tokens.index("a"), vocab.tokens.index("b")
    assert _strings(enc.decode(tf.constant([[a, b, EOS_ID, a, PAD_ID]]))) == ["a b"]
    assert _strings(enc.decode(enc.encode(tf.constant(["a zzz b"])).to_tensor())) == ["a <unk> b"]


def test_vocabulary_counts_min_count_and_save(tmp_path):
    vocab = fit_vocabulary(["a a a b b c"], kind="word", min_count=2)
    assert vocab.tokens[:4] == ("<pad>", "<unk>", "<start>", "<eos>")
    assert vocab.tokens[4:] == ("a", "b")
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    char = fit_vocabulary(["ab\nb"], kind="char")
    char.save(tmp_path / "c.json")
    assert "\n" in Vocabulary.load(tmp_path / "c.json").tokens
