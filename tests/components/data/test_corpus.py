"""corpus.texts / corpus.count: batched reads must keep every example, in order."""
import tensorflow as tf

from components.data import corpus


def _examples(n):
    words = [f"phrase {i} — é{i % 7}" for i in range(n)]
    return words, tf.data.Dataset.from_tensor_slices({"en": words, "id": list(range(n))})


def test_texts_keeps_every_example_in_order_across_batches():
    words, ds = _examples(9000)  # more than two internal batches, the last one partial
    assert corpus.texts(ds, "en") == words


def test_count_uses_the_known_size_or_counts_when_unknown():
    _, ds = _examples(9000)
    assert corpus.count(ds) == 9000
    odd = ds.filter(lambda ex: ex["id"] % 2 == 1)  # cardinality unknown: counted
    assert int(odd.cardinality()) < 0
    assert corpus.count(odd) == 4500
    assert corpus.count(ds.take(0)) == 0
