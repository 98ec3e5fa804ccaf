"""docs/configuration.md is generated from the config schemas; these tests keep it honest."""
from pipeline.config_reference import COMMAND, DOC_PATH, render, undocumented


def test_configuration_page_is_up_to_date():
    expected = render()
    actual = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    assert actual == expected, (f"{DOC_PATH.name} is stale (the schemas in pipeline/config.py changed); "
                                f"regenerate it with: {COMMAND}")


def test_every_config_key_has_a_description():
    missing = undocumented()
    assert not missing, ("give these keys a Field(description=...) in pipeline/config.py, then run "
                         f"{COMMAND}: {', '.join(missing)}")


def test_page_lists_every_key_with_default_and_choices():
    page = render()
    assert "## Task `translate`" in page and "## Task `lm`" in page
    assert "| `attention` | `str` | `none` | `none`, `dot`, `general` |" in page
    assert "| `learning_rate` | `float` | `20.0` | `> 0` |" in page  # the LM's SGD default
    assert "| `name` | `str` | *required* |" in page
    assert "#### `data.validation`\n\nThe same keys as `data.train` above." in page
