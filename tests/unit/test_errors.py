from __future__ import annotations

import inspect

import shipyard.errors as errors_module
from shipyard.errors import ShipyardError, error_class_for_code


def _error_classes() -> list[type[ShipyardError]]:
    return [c for _, c in inspect.getmembers(errors_module, inspect.isclass) if issubclass(c, ShipyardError)]


def test_codes_are_unique_and_round_trip() -> None:
    classes = _error_classes()
    assert len({c.code for c in classes}) == len(classes)
    for cls in classes:
        assert error_class_for_code(cls.code) is cls


def test_every_class_is_drawn_in_the_module_docstring() -> None:
    for cls in _error_classes():
        assert cls.__name__ in errors_module.__doc__
        assert cls.code in errors_module.__doc__


def test_wire_shape() -> None:
    err = errors_module.Conflict("nope", key="lr")
    assert err.to_dict() == {"error_code": "CONFLICT", "message": "nope", "details": {"key": "lr"}}
    assert errors_module.NotFound("x").to_dict() == {"error_code": "NOT_FOUND", "message": "x"}
    assert error_class_for_code("SOMETHING_NEW") is ShipyardError
