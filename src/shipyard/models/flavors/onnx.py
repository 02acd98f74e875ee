"""ONNX models (``onnx.ModelProto``), run with ONNX Runtime on the CPU.

Saved as ``model.onnx`` after ``onnx.checker.check_model``; weights stay inside the file (the
protobuf limit makes that 2 GB at most). Not pickle: an ONNX graph holds operators and
tensors, no code.

``predict`` feeds the model's inputs by name, each converted to the element type the model
declares (float32 mostly):

- a model with one input gets the whole DataFrame or array (all columns, in signature order);
- a model with several inputs gets one column (or dict entry) per input name, shaped ``(n, 1)``
  when the input is two-dimensional and ``(n,)`` when it is one-dimensional; a missing input is
  an ``InvalidInput`` naming it.

It returns the output array of a single-output model, and a dict of output name -> array when
the model has several outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors import check_options, comes_from, distributions_of

MODEL_FILE = "model.onnx"
# ONNX Runtime's names of tensor element types -> numpy dtypes
_ELEMENT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
                  "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
                  "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
                  "tensor(string)": "object"}


class _SessionPredictor:
    def __init__(self, model: Any) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]

    def predict(self, data: Any) -> Any:
        if len(self.inputs) == 1:
            feed = {self.inputs[0].name: _array(data, self.inputs[0].type)}
        else:
            feed = {}
            for spec in self.inputs:
                try:
                    column = data[spec.name]
                except (KeyError, IndexError, TypeError, ValueError):
                    raise InvalidInput(f"missing input {spec.name!r}: this ONNX model takes the inputs "
                                       f"{[i.name for i in self.inputs]}", missing=[spec.name]) from None
                values = _array(column, spec.type)
                feed[spec.name] = values.reshape(-1, 1) if len(spec.shape or ()) == 2 and values.ndim == 1 else values
        results = self.session.run(None, feed)
        return results[0] if len(results) == 1 else dict(zip(self.outputs, results, strict=True))


def _array(data: Any, element_type: str) -> Any:
    import numpy as np

    dtype = np.dtype(_ELEMENT_TYPES.get(element_type, "float32"))
    if hasattr(data, "to_numpy"):  # pandas (nullable columns: missing values become NaN)
        return data.to_numpy(dtype=dtype, na_value=np.nan) if dtype.kind == "f" else data.to_numpy(dtype=dtype)
    return np.asarray(data, dtype=dtype)


class OnnxFlavor:
    name = "onnx"

    def accepts(self, model: Any) -> bool:
        if not comes_from(model, "onnx"):
            return False
        import onnx

        return isinstance(model, onnx.ModelProto)

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        import onnx

        check_options(self.name, options)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(f"not a valid ONNX model: {exc}") from None
        onnx.save_model(model, str(folder / MODEL_FILE))
        return {"format": "onnx", "file": MODEL_FILE}, False, distributions_of({"onnx", "onnxruntime", "numpy"})

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        import onnx

        return onnx.load_model(str(folder / options["file"]), load_external_data=False)

    def predictor(self, model: Any) -> Any:
        return _SessionPredictor(model)
