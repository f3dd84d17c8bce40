"""The local Function Compute runtime: every function of `functions/` served on loopback."""

from local.fcruntime.runtime import FcRuntime, Invocation, LocalFunction
from local.fcruntime.spec import FunctionSpec, load_functions

__all__ = ["FcRuntime", "FunctionSpec", "Invocation", "LocalFunction", "load_functions"]
