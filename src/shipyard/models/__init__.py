"""Models: packages with a manifest (flavor, files with digests, signature, requirements),
flavors that save and load framework objects, and signatures enforced at predict time."""

from shipyard.models.flavors.pyfunc import ModelContext, PythonModel

__all__ = ["ModelContext", "PythonModel"]
