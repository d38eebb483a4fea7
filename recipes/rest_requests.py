"""TF Serving's REST JSON, as its API documentation specifies, in both directions: the client's side.

TF Serving, not tfxfer, decodes REST bodies in production, so this is no part
of the library's serving code: it sits beside `predict.py`, which prints ready
requests with it (`image_request`, `text_request`, `curl_command`). It writes
down the documented mapping (https://www.tensorflow.org/tfx/serving/api_rest)
so that the tests can also check that an exported SavedModel's signatures
accept exactly the tensors TF Serving hands them (`decode_request`) and answer
in the shape users get back (`format_response`). It needs TensorFlow only, and
is a reading of that documentation, not TF Serving itself:

- Row format `{"instances": [...]}`: one list item per example. With a single
  input each item is that input's value; otherwise (or optionally) each item is
  an object `{input_name: value}`. Items are stacked along a new batch axis.
  The reply is `{"predictions": [...]}`: one object `{output_name: value}` per
  example (just the value when there is one output).
- Columnar format `{"inputs": ...}`: the whole batched value of a single input,
  or an object `{input_name: batched value}`. The reply is `{"outputs": ...}`:
  an object `{output_name: batched value}` (just the value for one output).
- `{"b64": "..."}` stands for bytes anywhere a string tensor value goes.
- `"signature_name"` picks the signature; `serving_default` when absent.
- String outputs come back as text, except outputs whose name ends in `_bytes`,
  which come back as `{"b64": ...}`.
"""

import base64
import binascii
import dataclasses
import json
import shlex
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from tfxfer.export.layout import SERVING_DEFAULT as DEFAULT_SIGNATURE


@dataclasses.dataclass
class RestRequest:
    """A decoded REST body.

    Attributes:
        signature_name: str. The signature TF Serving would run.
        format: str. `"row"` (`instances`) or `"columnar"` (`inputs`).
        inputs: dict[str, np.ndarray]. The signature's input tensors, batched.
    """

    signature_name: str
    format: str
    inputs: dict[str, np.ndarray]


def decode_request(body: str | bytes | Mapping, signatures: Mapping[str, Mapping[str, tf.DType]]) -> RestRequest:
    """Turns a TF Serving REST `:predict` body into the chosen signature's input tensors.

    Args:
        body: str, bytes or dict. The JSON body, as text or already parsed.
        signatures: dict. `{signature_name: {input_name: dtype}}` of the model,
            e.g. from `signature_inputs`.
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if not isinstance(body, Mapping):
        raise ValueError(f"A REST body must be a JSON object. Received: {type(body).__name__}")
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if signature_name not in signatures:
        raise ValueError(
            f"Unknown signature_name; the model has {sorted(signatures)}. Received: signature_name={signature_name!r}"
        )
    input_dtypes = signatures[signature_name]
    if ("instances" in body) == ("inputs" in body):
        raise ValueError(
            'A REST body needs exactly one of "instances" (row format) or "inputs" (columnar format). '
            f"Received keys: {sorted(body)}"
        )
    if "instances" in body:
        columns = _columns_from_rows(body["instances"], input_dtypes)
        request_format = "row"
    else:
        columns = _named(body["inputs"], input_dtypes)
        request_format = "columnar"
    inputs = {name: _to_array(value, input_dtypes[name], name) for name, value in columns.items()}
    return RestRequest(signature_name, request_format, inputs)


def format_response(outputs: Mapping[str, np.ndarray | tf.Tensor], request_format: str) -> dict:
    """The JSON TF Serving returns for a signature's `outputs`.

    Args:
        outputs: dict. `{output_name: batched tensor}` from the signature.
        request_format: str. `"row"` or `"columnar"`, as in `RestRequest.format`.
    """
    if request_format not in ("row", "columnar"):
        raise ValueError(f'request_format must be "row" or "columnar". Received: {request_format!r}')
    values = {name: _to_json(name, np.asarray(value)) for name, value in sorted(outputs.items())}
    if request_format == "columnar":
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    batch = {len(value) for value in values.values()}
    if len(batch) != 1:
        raise ValueError(f"Row format needs outputs with one batch size. Received sizes: {sorted(batch)}")
    return {"predictions": [{name: value[i] for name, value in values.items()} for i in range(batch.pop())]}


def signature_inputs(saved_model_dir: str) -> dict[str, dict[str, tf.DType]]:
    """`{signature_name: {input_name: dtype}}` of a SavedModel, read with TensorFlow only.

    saved_model_dir: str. A SavedModel (version) folder.
    """
    loaded = tf.saved_model.load(saved_model_dir)
    return {
        name: {key: spec.dtype for key, spec in function.structured_input_signature[1].items()}
        for name, function in loaded.signatures.items()
    }


def image_request(images: Sequence[bytes], *, signature_name: str | None = None) -> dict:
    """A row-format body for the image-bytes signature: `{"instances": [{"b64": ...}, ...]}`.

    images: sequence of bytes. Encoded images.
    signature_name: str | None. Added to the body when set.
    """
    body = {"instances": [{"b64": base64.b64encode(contents).decode("ascii")} for contents in images]}
    if signature_name:
        body = {"signature_name": signature_name, **body}
    return body


def text_request(texts: Sequence[str], *, signature_name: str | None = None) -> dict:
    """A row-format body for a text model's `serving_default`: `{"instances": ["some text", ...]}`.

    texts: sequence of str. Raw texts.
    signature_name: str | None. Added to the body when set.
    """
    body = {"instances": [str(text) for text in texts]}
    if signature_name:
        body = {"signature_name": signature_name, **body}
    return body


def curl_command(body: Mapping, model_name: str, *, host: str = "localhost:8501") -> str:
    """A ready `curl` command that POSTs `body` to TF Serving's REST `:predict` endpoint.

    body: dict. The JSON body.
    model_name: str. The model's name in TF Serving (its base folder name).
    host: str. host:port of TF Serving's REST API.
    """
    url = f"http://{host}/v1/models/{model_name}:predict"
    return f"curl -X POST -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))} {url}"


def _columns_from_rows(instances, input_dtypes):
    if not isinstance(instances, list) or not instances:
        raise ValueError(
            '"instances" must be a non-empty list with one item per example. '
            f"Received: {type(instances).__name__}"
        )
    rows = [_named(instance, input_dtypes) for instance in instances]
    names = set(rows[0])
    if any(set(row) != names for row in rows):
        raise ValueError(f"Every instance must give the same inputs. Received: {[sorted(row) for row in rows]}")
    return {name: [row[name] for row in rows] for name in names}


def _named(value, input_dtypes):
    """`{input_name: value}`: a named-input object as it is, a bare value for the only input."""
    if isinstance(value, Mapping) and not _is_b64(value):
        unknown = sorted(set(value) - set(input_dtypes))
        missing = sorted(set(input_dtypes) - set(value))
        if unknown or missing:
            raise ValueError(
                f"The signature's inputs are {sorted(input_dtypes)}. Received: inputs {sorted(value)} "
                f"(unknown {unknown}, missing {missing})"
            )
        return dict(value)
    if len(input_dtypes) != 1:
        raise ValueError(
            f"The signature has several inputs {sorted(input_dtypes)}, so each value must be an object "
            f"naming them. Received: {type(value).__name__}"
        )
    return {next(iter(input_dtypes)): value}


def _is_b64(value):
    return isinstance(value, Mapping) and set(value) == {"b64"}


def _to_array(value, dtype, name):
    if dtype == tf.string:
        return np.array(_strings(value, name), dtype=object)
    try:
        return np.array(value, dtype=dtype.as_numpy_dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Input {name!r} must be a (nested) list of numbers of one shape for {dtype.name}. "
            f"Received: {str(error)}"
        ) from error


def _strings(value, name):
    if isinstance(value, list):
        return [_strings(item, name) for item in value]
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError) as error:
            raise ValueError(f'Input {name!r} has a "b64" value that is not base64. Received: {error}') from error
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f'Input {name!r} takes strings or {{"b64": ...}} objects. Received: {type(value).__name__}')


def _to_json(name, array):
    if array.dtype.kind in ("S", "O"):
        encode = ((lambda b: {"b64": base64.b64encode(b).decode("ascii")}) if name.endswith("_bytes")
                  else (lambda b: b.decode("utf-8")))
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()
