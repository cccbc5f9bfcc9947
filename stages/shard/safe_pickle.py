"""A restricted unpickler for untrusted pickles of plain data and NumPy arrays, with a memory budget.

Pickle's own loader runs whatever a file names; this one is Python's reference unpickler with:
  - globals: only NumPy array/dtype/scalar reconstruction and bytes/bytearray/set/frozenset/complex, each through a
    checking function here (os.system, eval, getattr, ... raise UnsafePickleError);
  - opcodes: no NEWOBJ/OBJ/INST, no persistent ids, BUILD only on arrays made by `_reconstruct` (their state
    checked) and on dtypes made here;
  - dtypes: numeric and bool kinds only (no objects, strings, voids such as V4096), and every array is made
    with a fresh descriptor from the dtype's text, so a later BUILD on a pickled dtype cannot alter an array;
  - memory: every allocation is charged to a budget *before* it happens (bytearray(n), arrays by elements x
    itemsize, array states, sets), every opcode costs a fixed amount (containers, memo) and every string or
    bytes object read its size; the budget is `factor x pickle size + base`, so a 32-byte pickle cannot ask
    for 3 GB. Views over pickled bytes may not reach past them (no zero strides conjuring elements).
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import re

import numpy as np

OP_COST = 96  # bytes charged per opcode: a container, a memo entry, a small object
BUDGET_FACTOR = 4
BUDGET_BASE = 64 * 1024 * 1024
MAX_DIMENSION = 1 << 40
MAX_DEPTH = 100
TYPECODE = re.compile(r"[<>|=]?(?:[?biufc]\d{0,2}|b1)")
DATA_OPS = {op[0] for op in (pickle.BINBYTES, pickle.SHORT_BINBYTES, pickle.BINBYTES8, pickle.BYTEARRAY8,
                             pickle.BINUNICODE, pickle.SHORT_BINUNICODE, pickle.BINUNICODE8, pickle.BINSTRING,
                             pickle.SHORT_BINSTRING, pickle.STRING, pickle.UNICODE)}
# where the keys / members of a dict or set being built sit on the stack when its opcode runs
KEYED_OPS = {pickle.SETITEM[0]: lambda stack: stack[-2:-1], pickle.SETITEMS[0]: lambda stack: stack[0::2],
             pickle.DICT[0]: lambda stack: stack[0::2], pickle.ADDITEMS[0]: lambda stack: stack,
             pickle.FROZENSET[0]: lambda stack: stack}
PLAIN_KEYS = (str, bytes, int, float, bool, type(None))
INT_OPS = {op[0] for op in (pickle.LONG, pickle.LONG1, pickle.LONG4, pickle.INT)}
MAX_INT_BITS = 64  # larger ints are never data here, and colliding big-int keys would make dicts quadratic
REFUSED_OPS = {op[0]: name for op, name in ((pickle.NEWOBJ, "NEWOBJ"), (pickle.NEWOBJ_EX, "NEWOBJ_EX"),
                                            (pickle.OBJ, "OBJ"), (pickle.INST, "INST"),
                                            (pickle.NEXT_BUFFER, "NEXT_BUFFER"),
                                            (pickle.READONLY_BUFFER, "READONLY_BUFFER"))}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for something other than plain data and NumPy arrays, or for too much memory."""


def plain_keys(keys) -> None:
    """Dict keys and set members must be plain scalars: tuples of colliding hashes (-1 and -2 hash alike) would
    make inserting them quadratic."""
    for key in keys:
        if type(key) not in PLAIN_KEYS:
            raise UnsafePickleError(f"a dict key or set member of type {type(key).__name__} is not allowed")


def plain_dtype(value) -> np.dtype:
    """A fresh numeric/bool dtype from a dtype, a typecode str or bytes; anything else is refused."""
    if isinstance(value, np.dtype):
        if value.hasobject or value.fields is not None or value.subdtype is not None:
            raise UnsafePickleError(f"dtype {value} is not allowed (numbers and bools only)")
        value = value.str
    if isinstance(value, bytes):
        value = value.decode("latin1")
    if not isinstance(value, str) or not TYPECODE.fullmatch(value):
        raise UnsafePickleError(f"dtype {value!r:.40} is not allowed (numbers and bools only)")
    try:
        return np.dtype(value)
    except TypeError:
        raise UnsafePickleError(f"dtype {value!r:.40} is not a NumPy dtype") from None


def checked_shape(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else shape
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            type(s) is int and 0 <= s <= MAX_DIMENSION for s in shape):
        raise UnsafePickleError(f"array shape {shape!r:.60} is not allowed")
    return shape


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    total = dtype.itemsize
    for size in shape:
        total *= size
    return total


class SafeUnpickler(pickle._Unpickler):
    """Unpickles plain data and NumPy arrays within `budget` bytes; anything else raises UnsafePickleError."""

    def __init__(self, data: bytes, budget: int):
        super().__init__(io.BytesIO(data))
        self.budget = budget
        self._built_dtypes: dict[int, np.dtype] = {}  # dtypes made here (BUILD allowed once), kept alive by id
        self._unbuilt_arrays: dict[int, np.ndarray] = {}  # arrays made by _reconstruct, not yet given their state
        self._globals = {
            ("numpy", "ndarray"): self._ndarray,
            ("numpy", "dtype"): self._dtype,
            ("numpy.core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): self._reconstruct,
            ("numpy.core.multiarray", "scalar"): self._scalar,
            ("numpy._core.multiarray", "scalar"): self._scalar,
            ("numpy.core.numeric", "_frombuffer"): self._frombuffer,
            ("numpy._core.numeric", "_frombuffer"): self._frombuffer,
            ("_codecs", "encode"): self._encode,
            ("builtins", "set"): self._set,
            ("builtins", "frozenset"): self._frozenset,
            ("builtins", "bytearray"): self._bytearray,
            ("builtins", "bytes"): self._bytes,
            ("builtins", "complex"): self._complex,
        }
        dispatch = dict(pickle._Unpickler.dispatch)
        for code, load in list(dispatch.items()):
            dispatch[code] = self._charged(code, load)
        for code, name in REFUSED_OPS.items():
            dispatch[code] = self._refused(name)
        dispatch[pickle.BUILD[0]] = self._charged(pickle.BUILD[0], SafeUnpickler._build)
        self.dispatch = dispatch

    # ---- budget ----------------------------------------------------------------------------------------
    def charge(self, size: int, what: str) -> None:
        if size > self.budget:
            raise UnsafePickleError(f"pickle asks for {what} ({size} bytes), more than its memory budget allows")
        self.budget -= size

    def _charged(self, code: int, load):
        keys = KEYED_OPS.get(code)

        def run(unpickler):
            unpickler.charge(OP_COST, "too many objects")
            if keys is not None:
                plain_keys(keys(unpickler.stack))
            load(unpickler)
            if code in DATA_OPS:
                unpickler.charge(len(unpickler.stack[-1]), "more data")
            elif code in INT_OPS and isinstance(unpickler.stack[-1], int) and \
                    unpickler.stack[-1].bit_length() > MAX_INT_BITS:
                raise UnsafePickleError(f"pickle holds an integer of more than {MAX_INT_BITS} bits")
            elif code == pickle.FRAME[0]:
                with unpickler._unframer.current_frame.getbuffer() as frame:
                    unpickler.charge(frame.nbytes, "a frame")
        return run

    @staticmethod
    def _refused(name: str):
        def run(unpickler):
            raise UnsafePickleError(f"pickle opcode {name} is not allowed")
        return run

    # ---- names -----------------------------------------------------------------------------------------
    def find_class(self, module: str, name: str):
        if self.proto < 3:  # Python 2 names, as pickle's own find_class maps them
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"pickle wants {module}.{name}; only NumPy arrays and plain data are "
                                    "allowed") from None

    def persistent_load(self, pid):
        raise UnsafePickleError("persistent ids are not allowed")

    # ---- the allowed constructors ----------------------------------------------------------------------
    def _dtype(self, obj, align=False, copy=False):
        dtype = np.dtype(plain_dtype(obj).str, align=bool(align), copy=True)  # never a shared singleton
        self._built_dtypes[id(dtype)] = dtype
        return dtype

    def _ndarray(self, shape, dtype, buffer=None, offset=0, strides=None, order=None):
        if not isinstance(buffer, (bytes, bytearray)) or strides is not None or type(offset) is not int or offset < 0:
            raise UnsafePickleError("numpy.ndarray(...) is only allowed over a bytes buffer, without strides")
        shape, dtype = checked_shape(shape), plain_dtype(dtype)
        if nbytes(shape, dtype) > len(buffer) - offset:
            raise UnsafePickleError(f"array {shape} {dtype} is larger than its {len(buffer)}-byte buffer")
        return np.ndarray(shape, dtype, buffer, offset, None, order if order in ("C", "F") else None)

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not self._globals[("numpy", "ndarray")]:
            raise UnsafePickleError("only numpy.ndarray can be reconstructed")
        shape, dtype = checked_shape(shape), plain_dtype(dtype)
        self.charge(nbytes(shape, dtype), f"an array {shape} of {dtype}")
        array = np.ndarray.__new__(np.ndarray, shape, dtype)
        self._unbuilt_arrays[id(array)] = array
        return array

    def _scalar(self, dtype, data=None):
        from numpy._core.multiarray import scalar

        dtype = plain_dtype(dtype)
        if data is None:
            return scalar(dtype)
        if not isinstance(data, bytes) or len(data) != dtype.itemsize:
            raise UnsafePickleError(f"a {dtype} scalar needs {dtype.itemsize} bytes")
        return scalar(dtype, data)

    def _frombuffer(self, buffer, dtype, shape, order):
        if not isinstance(buffer, (bytes, bytearray)):
            raise UnsafePickleError("_frombuffer is only allowed over bytes")
        shape, dtype = checked_shape(shape), plain_dtype(dtype)
        if nbytes(shape, dtype) != len(buffer):
            raise UnsafePickleError(f"array {shape} {dtype} does not match its {len(buffer)}-byte buffer")
        return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if order == "F" else "C")

    def _encode(self, text, encoding="latin1"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise UnsafePickleError("_codecs.encode is only allowed for latin1 strings")
        self.charge(len(text), "a byte string")
        return text.encode("latin1")

    def _items(self, items, what: str):
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise UnsafePickleError(f"{what}() is only allowed over a list or tuple")
        plain_keys(items)
        self.charge(OP_COST * len(items), f"a {what} of {len(items)} items")
        return items

    def _set(self, items=()):
        return set(self._items(items, "set"))

    def _frozenset(self, items=()):
        return frozenset(self._items(items, "frozenset"))

    def _byte_string(self, kind: type, source=b"", encoding=None, errors=None):
        """bytes(...) / bytearray(...) from a size, bytes or a latin1 string, charged before it is made."""
        if type(source) is int and source >= 0 and encoding is None:
            self.charge(source, f"{kind.__name__}({source})")
            return kind(source)
        if isinstance(source, (bytes, bytearray)) and encoding is None:
            self.charge(len(source), f"a {kind.__name__}")
            return kind(source)
        if isinstance(source, str) and encoding in ("latin1", "latin-1"):
            self.charge(len(source), f"a {kind.__name__}")
            return kind(source, "latin1")
        raise UnsafePickleError(f"{kind.__name__}(...) is only allowed from a size, bytes or a latin1 string")

    def _bytes(self, *args):
        return self._byte_string(bytes, *args)

    def _bytearray(self, *args):
        return self._byte_string(bytearray, *args)

    def _complex(self, real=0.0, imag=0.0):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (real, imag)):
            raise UnsafePickleError("complex(...) is only allowed from two numbers")
        return complex(real, imag)

    # ---- BUILD -----------------------------------------------------------------------------------------
    def _build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, np.ndarray) and self._unbuilt_arrays.get(id(target)) is target:
            del self._unbuilt_arrays[id(target)]
            target.__setstate__(self._array_state(state))
        elif isinstance(target, np.dtype) and self._built_dtypes.get(id(target)) is target:
            del self._built_dtypes[id(target)]  # one BUILD per dtype made here
            target.__setstate__(state)
            plain_dtype(target)
        else:
            raise UnsafePickleError(f"pickle BUILD on {type(target).__name__} is not allowed")

    def _array_state(self, state) -> tuple:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("array state is not (version, shape, dtype, fortran, data)")
        version, (shape, dtype, fortran, data) = (state[0], state[1:]) if len(state) == 5 else (1, state)
        shape, dtype = checked_shape(shape), plain_dtype(dtype)
        if not isinstance(data, (bytes, bytearray)) or len(data) != nbytes(shape, dtype):
            raise UnsafePickleError(f"array state of {shape} {dtype} does not hold exactly its bytes")
        self.charge(len(data), f"an array {shape} of {dtype}")
        return (version, shape, dtype, bool(fortran), data)


def refuse_objects(value) -> None:
    """Raise if anything loaded is not plain data (or nests absurdly); iterative, each object visited once."""
    seen: set[int] = set()
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnsafePickleError(f"pickle nests deeper than {MAX_DEPTH} levels")
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (np.ndarray, np.generic)):
            plain_dtype(current.dtype)
        elif isinstance(current, dict):
            stack.extend((item, depth + 1) for pair in current.items() for item in pair)
        elif isinstance(current, (list, tuple, set, frozenset)):
            stack.extend((item, depth + 1) for item in current)
        elif not isinstance(current, (str, bytes, bytearray, int, float, complex, bool, type(None))):
            raise UnsafePickleError(f"pickle holds a {type(current).__name__}")


def safe_loads(data: bytes, max_bytes: int = 1 << 30, budget: int | None = None):
    """Unpickle plain data and NumPy arrays only, from at most `max_bytes`, within a memory budget."""
    if len(data) > max_bytes:
        raise UnsafePickleError(f"pickle of {len(data)} bytes is over the {max_bytes}-byte cap")
    budget = BUDGET_FACTOR * len(data) + BUDGET_BASE if budget is None else budget
    try:
        content = SafeUnpickler(data, budget).load()
    except RecursionError:
        raise UnsafePickleError("pickle nests too deeply") from None
    refuse_objects(content)
    return content
