"""Package namespaces that import their names on first use (PEP 562).

``tanlib.data``, ``tanlib.engine`` and ``tanlib.analysis`` re-export the public names of
their modules. Importing them eagerly would load torch, scipy and matplotlib into every
process that needs one small piece (``tan run``, a notebook kernel that reads run
records), each spending seconds before doing any work. A package instead lists
``name -> defining module`` and installs the two functions made here::

    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

``from tanlib.data import build_manifest`` then imports ``tanlib.data.manifest`` only.

A name may be that of a module of the package too (``tanlib.engine.train``, the module,
defines ``train``, the function): the import system binds a submodule to its package's
attribute when it is first imported, which would hide the function. The package's
module type (a ``types.ModuleType`` subclass, as the Python reference allows for module
attribute access) keeps the exported object instead, as eager re-exports did.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``exports`` is
    imported from its module on first use and then kept in the package's namespace;
    any other name is an AttributeError, as for a plain module."""
    module = sys.modules[package]
    namespace = vars(module)

    class LazyPackage(types.ModuleType):
        def __setattr__(self, name, value):
            if name in exports and isinstance(value, types.ModuleType) and value.__name__ == f"{package}.{name}":
                return  # a submodule named like an export: the export keeps the name
            super().__setattr__(name, value)

    module.__class__ = LazyPackage

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
