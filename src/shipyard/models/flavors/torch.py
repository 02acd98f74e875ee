"""PyTorch modules: an ``nn.Module`` as safetensors weights plus its class, or a TorchScript module.

- ``torch.nn.Module``: the state dict (parameters and persistent buffers) goes to
  ``model.safetensors``; the manifest records the class as ``module:QualifiedName`` and the
  constructor's keyword arguments, given as the ``init_kwargs`` flavor option (values a manifest
  can hold: None, booleans, numbers, strings, and lists and string-keyed dicts of those; tuples
  come back as lists). Loading imports the class (it must be importable where the model is
  loaded, and derive from ``torch.nn.Module``), calls it with those arguments and loads the
  weights strictly; saving does the same first, so a package that could not be rebuilt is
  refused at log time. Not pickle.
- ``torch.jit.ScriptModule`` (from ``torch.jit.script`` or ``torch.jit.trace``): saved with
  ``torch.jit.save`` as ``model.pt`` and loaded with ``torch.jit.load``, which reads TorchScript
  code and tensors (constants through a restricted unpickler), not arbitrary Python objects.
  Not pickle.

``predict`` turns a DataFrame or array into a tensor of the model's input dtype (the
``input_dtype`` flavor option, a torch dtype name such as ``"int64"`` for token ids; by default
the dtype of the module's floating-point parameters: float32 mostly), runs the module in eval
mode under ``torch.no_grad()`` on the CPU and returns numpy (a tuple, list or dict of tensors
comes back with numpy arrays in it).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors import (
    check_options,
    class_path,
    comes_from,
    distributions_of,
    import_class,
    portable_params,
)

WEIGHTS_FILE = "model.safetensors"
SCRIPT_FILE = "model.pt"
_OPTIONS = frozenset({"init_kwargs", "input_dtype"})
# The recorded input dtype of each loaded module, for ``predictor`` (which gets the module only).
_INPUT_DTYPES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


class _TorchPredictor:
    def __init__(self, module: Any, input_dtype: str) -> None:
        self.module = module
        self.input_dtype = input_dtype

    def predict(self, data: Any) -> Any:
        import numpy as np
        import torch

        target = getattr(torch, self.input_dtype)
        try:
            dtype = np.dtype(self.input_dtype)
        except TypeError:  # bfloat16 and other dtypes numpy lacks: convert from float32
            dtype = np.dtype("float32")
        if hasattr(data, "to_numpy"):  # pandas (nullable columns: missing values become NaN)
            array = data.to_numpy(dtype=dtype, na_value=np.nan) if dtype.kind == "f" else data.to_numpy(dtype=dtype)
        else:
            array = np.asarray(data, dtype=dtype)
        with torch.no_grad():
            return _to_numpy(self.module(torch.from_numpy(np.ascontiguousarray(array)).to(target)))


def _to_numpy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    if isinstance(value, tuple | list):
        return type(value)(_to_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def _float_dtype(module: Any) -> str:
    """The name of the dtype of the module's first floating-point parameter or buffer, else float32."""
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.is_floating_point():
            return str(tensor.dtype).removeprefix("torch.")
    return "float32"


def _remember_dtype(module: Any, options: dict[str, Any]) -> Any:
    if options.get("input_dtype"):
        _INPUT_DTYPES[module] = options["input_dtype"]
    return module


class TorchFlavor:
    name = "torch"

    def accepts(self, model: Any) -> bool:
        if not comes_from(model, "torch"):
            return False
        import torch

        return isinstance(model, torch.nn.Module)

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        import torch

        check_options(self.name, options, _OPTIONS)
        model = getattr(model, "_orig_mod", model)  # a torch.compile'd module: save the module it wraps
        input_dtype = options.get("input_dtype") or _float_dtype(model)
        if not isinstance(getattr(torch, str(input_dtype), None), torch.dtype):
            raise InvalidInput(f"input_dtype {input_dtype!r} is not the name of a torch dtype (float32, int64...)")
        if isinstance(model, torch.jit.ScriptModule):
            if options.get("init_kwargs"):
                raise InvalidInput("init_kwargs is for nn.Module classes, not for a TorchScript module")
            torch.jit.save(model, str(folder / SCRIPT_FILE))
            saved = {"format": "torchscript", "file": SCRIPT_FILE, "input_dtype": input_dtype}
            return saved, False, distributions_of({"torch", "numpy"})
        cls = type(model)
        if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
            raise InvalidInput(f"cannot log a {cls.__qualname__} defined in {cls.__module__} (or inside a function): "
                               "loading imports the class, so define it in an importable module, or log a "
                               "TorchScript version (torch.jit.script(model))")
        init_kwargs, unsupported = portable_params(dict(options.get("init_kwargs") or {}))
        if unsupported:
            raise InvalidInput(f"init_kwargs {', '.join(unsupported)}: only numbers, strings, booleans, None and "
                               "lists and dicts of those can be recorded")
        from safetensors.torch import save_model

        save_model(model, str(folder / WEIGHTS_FILE))
        saved = {"format": "safetensors", "file": WEIGHTS_FILE, "class": class_path(cls),
                 "init_kwargs": init_kwargs, "input_dtype": input_dtype}
        self.load(folder, saved)  # refuse now a package that could not be rebuilt later
        modules = {"torch", "safetensors", "numpy", cls.__module__.partition(".")[0]}
        return saved, False, distributions_of(modules)

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        import torch

        path = folder / options["file"]
        if options["format"] == "torchscript":
            # torch.jit.load has no annotations
            model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
            return _remember_dtype(model.eval(), options)
        cls = import_class(options["class"], torch.nn.Module, "torch.nn.Module")
        call = f"{options['class']}(**{options.get('init_kwargs', {})})"
        hint = "pass the constructor's arguments as the init_kwargs flavor option"
        try:
            module = cls(**options.get("init_kwargs", {}))
        except TypeError as exc:
            raise InvalidInput(f"cannot build {call}: {exc}; {hint}") from None
        from safetensors.torch import load_model

        try:
            load_model(module, str(path), strict=True, device="cpu")
        except RuntimeError as exc:
            raise InvalidInput(f"the saved weights do not fit {call}: {str(exc).rstrip('.')}; {hint}") from None
        return _remember_dtype(module.eval(), options)

    def predictor(self, model: Any) -> Any:
        return _TorchPredictor(model, _INPUT_DTYPES.get(model) or _float_dtype(model))
