"""JSON from untrusted peers (client frames, admin bodies and cursors), parsed strictly.

Python's json.loads accepts more than JSON and fails in ways no caller expects:
- it accepts `NaN`, `Infinity` and `-Infinity`, which RFC 8259 does not have, and turns `1e400` into an
  infinite float; a non-finite number then breaks whatever does arithmetic or `int()` on it;
- it nests as deep as the interpreter's stack allows and then raises RecursionError (about 1,000 levels,
  depending on the Python version and the stack already in use), which is not a ValueError.

`loads` refuses all of that with a `NotJson` (a ValueError) that says why, and also refuses anything
nested deeper than MAX_DEPTH, which is far beyond what any message of this API needs (its frames and
bodies are flat objects) and small enough that no later recursive walk can run out of stack.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


class NotJson(ValueError):
    """The text is not a JSON document this API accepts; str() says why."""


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJson(f"the number {text[:20]} is out of range")
    return value


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except NotJson:
        raise
    except RecursionError:
        raise NotJson(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4,300 digits
        raise NotJson(str(exc)) from None
    if too_deep(value, max_depth):
        raise NotJson(f"nested deeper than {max_depth} levels")
    return value


def too_deep(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than max_depth (a scalar is depth 0). Iterative: a value
    that is too deep for recursion must not crash the check that is there to refuse it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
