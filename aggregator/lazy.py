"""Public names of a package loaded from their submodules on first use (PEP 562 module
`__getattr__` and `__dir__`), so that importing the package costs only what is used: light
commands such as `aggregator frontpage` must not pay for the parser, feedgen or pydantic
when they need none of them (issue 15).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_names(
    package: str, public: Mapping[str, str], namespace: MutableMapping[str, Any], names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for the package `package` whose globals are `namespace`:
    `public` maps each public name to the submodule (relative to the package) that defines
    it; a name is imported on first use and kept in `namespace`, so later uses are plain
    lookups. `names` is the package's `__all__`. AttributeError for any other name."""

    def getattr_(name: str) -> Any:
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *names})

    return getattr_, dir_
