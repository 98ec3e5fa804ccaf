"""The private APIs the code uses, which force exact pins in requirements.txt: this fails loudly,
naming the API and its user, when an upgrade moves or removes one."""
from __future__ import annotations

import importlib

import pytest

# (module, attribute or None for the module itself, where the project uses it, the pin it forces)
PRIVATE_APIS = [
    ("keras.src.tree", "map_structure", "components/training/distribute.py", "keras==3.15.1"),
    ("keras.src.backend.tensorflow.trainer", "reduce_per_replica", "components/training/distribute.py",
     "keras==3.15.1"),
    ("keras.src.backend.tensorflow.rnn", "_do_lstm_arguments_support_cudnn", "components/models/cudnn.py",
     "keras==3.15.1"),
    ("tensorflow.python.eager.cancellation", "context", "components/serving/execution.py", "tensorflow==2.21.0"),
    ("tensorflow.python.eager.cancellation", "CancellationManager", "components/serving/execution.py",
     "tensorflow==2.21.0"),
    ("tensorflow.python.profiler.internal._pywrap_profiler_plugin", "xspace_to_tools_data",
     "bench/profile_translator_step.py", "tensorflow==2.21.0"),
]


@pytest.mark.parametrize("module,attribute,user,pin", PRIVATE_APIS, ids=[f"{m}.{a}" for m, a, _, _ in PRIVATE_APIS])
def test_private_api_still_there(module, attribute, user, pin):
    where = f"{module}.{attribute}" if attribute else module
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        pytest.fail(f"private API {where} (used by {user}, pinned {pin}) no longer imports: {err}")
    assert hasattr(mod, attribute), (f"private API {where} (used by {user}, pinned {pin}) is gone: "
                                     f"update {user} before moving the pin")


@pytest.mark.parametrize("module,attribute,user,pin", PRIVATE_APIS, ids=[f"{m}.{a}" for m, a, _, _ in PRIVATE_APIS])
def test_the_pin_says_why(module, attribute, user, pin):
    from tests.support.subprocess_run import ROOT

    text = (ROOT / "requirements.txt").read_text()
    assert pin in text.splitlines(), f"requirements.txt no longer pins {pin}"
    assert module in text, f"requirements.txt's comment on {pin} should name the private API {module}"
