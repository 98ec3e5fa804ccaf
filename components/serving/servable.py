"""Load one SavedModel version into a callable, introspectable servable.

Predict uses ``tf.saved_model.load(...).signatures`` (the TF2 way to call a
SavedModel); metadata comes from the MetaGraphDef's SignatureDefs read straight
from ``saved_model.pb``, because that is exactly what TF Serving reports
(including tensor names and ``__saved_model_init_op``).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from .errors import ServingError

log = logging.getLogger(__name__)

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class SignatureInfo:
    """A callable signature plus the specs requests are validated against."""

    name: str
    fn: Any
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]
    batchable: bool  # every input and output has a free leading (batch) dimension


class Servable:
    """One loaded version of one model. Immutable once built, so it is shared across threads."""

    def __init__(self, name: str, version: int, path: str, loaded: Any,
                 signatures: dict[str, SignatureInfo], signature_def_map):
        self.name = name
        self.version = version
        self.path = path
        self._loaded = loaded  # keeps the restored variables alive for the signature functions
        self.signatures = signatures
        self.signature_def_map = signature_def_map

    def signature(self, name: str) -> SignatureInfo:
        sig = self.signatures.get(name or DEFAULT_SIGNATURE)
        if sig is None:
            # TF Serving's REST handler (GetInfoMap) reports this as INVALID_ARGUMENT -> 400.
            raise ServingError(
                "INVALID_ARGUMENT",
                f'Serving signature name: "{name or DEFAULT_SIGNATURE}" not found in signature def')
        return sig

    def call(self, sig: SignatureInfo, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature on numpy inputs (already validated) and return numpy outputs."""
        tensors = {k: tf.convert_to_tensor(v, dtype=sig.inputs[k].dtype) for k, v in inputs.items()}
        try:
            result = sig.fn(**tensors)
        except tf.errors.OpError as exc:
            log.warning("Model %s version %d signature %s failed: %s", self.name, self.version, sig.name,
                        " ".join(exc.message.split()))
            raise ServingError(_op_error_code(exc), public_message(exc.message)) from None
        except (TypeError, ValueError) as exc:
            raise ServingError("INVALID_ARGUMENT", str(exc)) from exc
        if not isinstance(result, dict):
            result = {"output_0": result}
        return {k: v.numpy() for k, v in result.items()}


_TF_INTERNALS = re.compile(r"\[\[.*?\]\]|\[Op:[^\]]*\]|\{\{function_node [^}]*\}\}", re.S)


def public_message(message: str) -> str:
    """A TF runtime error as a client may see it: the error itself, without the graph internals
    TF wraps it in ("Graph execution error", "Detected at node while/...", the Python frames
    that built the graph, [[{{node TensorListStack}}]], [Op:__inference_...]). The full text
    goes to the server log."""
    blocks = []
    for block in message.split("\n\n"):
        first = block.strip()
        if (not first or first.startswith(("Graph execution error", "Detected at node"))
                or first.startswith('File "')):
            continue
        blocks.append(block)
    text = " ".join(_TF_INTERNALS.sub(" ", " ".join(blocks)).split())
    return text or "The model call failed (details in the server log)"


def _op_error_code(exc: tf.errors.OpError) -> str:
    from tensorflow.core.lib.core import error_codes_pb2

    try:
        return error_codes_pb2.Code.Name(exc.error_code)
    except ValueError:
        return "UNKNOWN"


def read_signature_defs(path: str):
    """SignatureDefMap of the 'serve' MetaGraph, as TF Serving's GetModelMetadata returns it."""
    pb = os.path.join(path, "saved_model.pb")
    pbtxt = os.path.join(path, "saved_model.pbtxt")
    saved = saved_model_pb2.SavedModel()
    if os.path.exists(pb):
        try:
            with open(pb, "rb") as fh:
                saved.ParseFromString(fh.read())
        except (message.DecodeError, OSError) as exc:
            raise ServingError("DATA_LOSS", f"Can't parse {pb} as binary proto") from exc
    elif os.path.exists(pbtxt):
        try:
            with open(pbtxt, encoding="utf-8") as fh:
                text_format.Parse(fh.read(), saved)
        except (text_format.ParseError, OSError, UnicodeDecodeError) as exc:
            raise ServingError("DATA_LOSS", f"Can't parse {pbtxt} as text proto") from exc
    else:
        raise ServingError(
            "NOT_FOUND",
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}")
    for mg in saved.meta_graphs:
        if SERVE_TAG in mg.meta_info_def.tags:
            out = get_model_metadata_pb2.SignatureDefMap()
            for key, sig in mg.signature_def.items():
                out.signature_def[key].CopyFrom(sig)
            return out
    raise ServingError("NOT_FOUND", f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }}")


def _specs(structure: Any) -> dict[str, tf.TensorSpec]:
    if isinstance(structure, dict):
        return {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in structure.items()}
    return {"output_0": tf.TensorSpec(structure.shape, structure.dtype, name="output_0")}


def _batchable(inputs: dict[str, tf.TensorSpec], outputs: dict[str, tf.TensorSpec]) -> bool:
    specs = list(inputs.values()) + list(outputs.values())
    return bool(inputs) and all(
        s.shape.rank is not None and s.shape.rank >= 1 and s.shape[0] is None for s in specs)


def load_servable(name: str, version: int, path: str) -> Servable:
    """Load ``path`` (one version directory); raises ServingError with TF's status code."""
    signature_defs = read_signature_defs(path)
    try:
        loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
    except tf.errors.OpError as exc:
        raise ServingError(_op_error_code(exc), exc.message) from exc
    except Exception as exc:  # TF raises OSError/ValueError/... for broken exports
        raise ServingError("UNKNOWN", f"{type(exc).__name__}: {exc}") from exc
    signatures = {}
    for sig_name, fn in loaded.signatures.items():
        _, kwargs = fn.structured_input_signature
        inputs = {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in kwargs.items()}
        outputs = _specs(fn.structured_outputs)
        signatures[sig_name] = SignatureInfo(sig_name, fn, inputs, outputs, _batchable(inputs, outputs))
    return Servable(name, version, path, loaded, signatures, signature_defs)
