"""TFDS catalog datasets (data.corpus: tfds) read from a local TFDS data dir."""
import pytest
import tensorflow_datasets as tfds

from components.data.errors import DataError
from pipeline.config import parse_config
from pipeline.tasks.lm import data as lm_data
from pipeline.tasks.lm.config import LMDataConfig
from pipeline.tasks.translate import data as translate_data
from tests.components.data import tiny_catalog

tfds.disable_progress_bar()


def translation_splits(cfg, prepare_dir):
    return translate_data.splits(translate_data.data_source(cfg), cfg, prepare_dir)


def lm_lines(cfg, prepare_dir):
    return lm_data.lines(lm_data.data_source(cfg), cfg, prepare_dir)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds_catalog")
    tiny_catalog.prepare(root)
    return root


def translate_cfg(tfds_dir, **data):
    return parse_config({"name": "t", "data": {"corpus": "tfds", "name": tiny_catalog.TRANSLATE,
                                               "tfds_data_dir": str(tfds_dir), "source_lang": "en",
                                               "target_lang": "de", **data}}).data


def lm_cfg(tfds_dir, **data):
    return parse_config({"name": "t", "task": "lm", "data": {"corpus": "tfds", "name": tiny_catalog.TEXT,
                                                             "tfds_data_dir": str(tfds_dir), **data}}).data


def test_translation_feature_maps_to_source_and_target(tfds_dir, tmp_path):
    cfg = translate_cfg(tfds_dir)
    splits = translation_splits(cfg, tmp_path)
    got = {s: [(ex["en"].decode(), ex["de"].decode()) for ex in tfds.as_numpy(ds)] for s, ds in splits.items()}
    assert got == {"train": tiny_catalog.pairs(160, 0), "validation": tiny_catalog.pairs(20, 1),
                   "test": tiny_catalog.pairs(20, 2)}
    assert translate_data.data_source(cfg).description == f"tfds:{tiny_catalog.TRANSLATE}"
    assert translate_data.data_source(cfg).uri("train").startswith(str(tfds_dir / tiny_catalog.TRANSLATE))
    assert not list(tmp_path.iterdir())  # read in place, nothing copied


def test_split_mapping_takes_tfds_split_specs_and_changes_the_fingerprint(tfds_dir, tmp_path):
    plain = translate_cfg(tfds_dir)
    mapped = translate_cfg(tfds_dir, splits={"validation": "train[:10]", "test": "validation"})
    splits = translation_splits(mapped, tmp_path)
    assert sum(1 for _ in splits["validation"]) == 10 and sum(1 for _ in splits["test"]) == 20
    fingerprint = lambda cfg: translate_data.data_source(cfg).fingerprint()  # noqa: E731
    assert fingerprint(mapped) != fingerprint(plain) == fingerprint(translate_cfg(tfds_dir))


def test_text_dataset_gives_one_example_per_line(tfds_dir, tmp_path):
    lines = lm_lines(lm_cfg(tfds_dir), tmp_path)
    assert lines["validation"][:5] == [en for en, _ in tiny_catalog.pairs(5, 1)]
    assert [len(v) for v in lines.values()] == [150, 30, 30]  # 5 lines per example, no empty tail


@pytest.mark.parametrize("make, expected", [
    (lambda d: translate_cfg(d, name="no_such_dataset_xyz"), r"^data\.name: .*no_such_dataset_xyz.*not found"),
    (lambda d: translate_cfg(d, splits={"test": "dev"}),
     r"^data\.splits\.test: .* has no split 'dev' \(its splits: test, train, validation"),
    (lambda d: translate_cfg(d, target_lang="fr"),
     r"^data\.source_lang/target_lang: .* has features \['de', 'en'\], not \['fr'\]"),
    (lambda d: lm_cfg(d, text_feature="content"),
     r"^data\.text_feature: .* has features \['text'\], not \['content'\]"),
])
def test_mistakes_are_one_line_data_errors(tfds_dir, tmp_path, make, expected):
    cfg = make(tfds_dir)
    with pytest.raises(DataError, match=expected) as err:
        prepare = lm_lines if isinstance(cfg, LMDataConfig) else translation_splits
        prepare(cfg, tmp_path)
    assert "\n" not in str(err.value)
