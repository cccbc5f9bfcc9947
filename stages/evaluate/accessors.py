"""Accessors: typed views of buffer bytes (byteStride, sparse, normalised integers), bounds-checked, cached.

Spec: glTF 2.0 section 3.6.2 (accessors), 3.6.2.3 (sparse), 3.11 (KHR_mesh_quantization for normalised attributes).
"""

from __future__ import annotations

import numpy as np

from .errors import BadData, LimitExceeded, MalformedAsset
from .gltf_container import Document

COMPONENT_DTYPES = {5120: "<i1", 5121: "<u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
DTYPES = {ctype: np.dtype(name) for ctype, name in COMPONENT_DTYPES.items()}
# Divisors of normalised integers (spec 3.11: signed -> max(c / 127, -1), unsigned -> c / 255, ...).
NORMALISED_DIVISORS = {5120: 127.0, 5121: 255.0, 5122: 32767.0, 5123: 65535.0}
TYPE_SHAPES = {"SCALAR": (1, 1), "VEC2": (1, 2), "VEC3": (1, 3), "VEC4": (1, 4), "MAT2": (2, 2), "MAT3": (3, 3),
               "MAT4": (4, 4)}
SPARSE_INDEX_TYPES = (5121, 5123, 5125)


class AccessorReader:
    """Reads accessors of one Document into [count, components] arrays, once each (read-only, cached)."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.accessors = doc.array("accessors")
        self.buffer_views = doc.array("bufferViews")
        self._cache: dict[int, np.ndarray] = {}
        self._views: dict[int, tuple[bytes, int, int, int]] = {}

    def info(self, index: int) -> tuple[int, str, bool, int]:
        """(componentType, type, normalized, count) of accessor `index`, validated."""
        where = f"accessors[{index}]"
        acc = self.accessors[index]
        ctype = acc.get("componentType")
        if ctype not in COMPONENT_DTYPES:
            raise self.doc.fail(MalformedAsset, f"{where}.componentType {ctype!r} is not a glTF 2.0 component type")
        atype = acc.get("type")
        if atype not in TYPE_SHAPES:
            raise self.doc.fail(MalformedAsset, f"{where}.type {atype!r} is not a glTF 2.0 accessor type")
        count = self.doc.integer(acc, "count", where, minimum=1)
        if count > self.doc.limits.max_accessor_count:
            raise self.doc.fail(LimitExceeded, f"{where}.count {count} is over the {self.doc.limits.max_accessor_count} cap")
        values = count * TYPE_SHAPES[atype][0] * TYPE_SHAPES[atype][1]
        if values > self.doc.limits.max_accessor_values:
            raise self.doc.fail(LimitExceeded, f"{where} holds {values} numbers, over the "
                                               f"{self.doc.limits.max_accessor_values} cap")
        return ctype, atype, bool(acc.get("normalized", False)), count

    def read(self, index: int, finite: bool = False) -> np.ndarray:
        """Accessor `index` as [count, components]: float64 for floats and normalised ints, else integers."""
        if index not in self._cache:
            array = self._decode(index)
            array.flags.writeable = False
            self._cache[index] = array
        array = self._cache[index]
        if finite and array.dtype.kind == "f" and not np.isfinite(array).all():
            raise self.doc.fail(BadData, f"accessors[{index}] holds NaN or infinity")
        return array

    def _decode(self, index: int) -> np.ndarray:
        ctype, atype, normalized, count = self.info(index)
        acc = self.accessors[index]
        where = f"accessors[{index}]"
        columns, rows = TYPE_SHAPES[atype]
        view_index = self.doc.index(acc, "bufferView", "bufferViews", where, required=False)
        if view_index is None:
            raw = np.zeros((count, columns * rows), dtype=COMPONENT_DTYPES[ctype])
        else:
            raw = self._strided(view_index, self.doc.integer(acc, "byteOffset", where, 0), ctype, columns, rows,
                                count, where)
        if "sparse" in acc:
            raw = self._apply_sparse(acc, raw, ctype, columns, rows, count, where)
        if ctype == 5126:
            return raw.astype(np.float64)
        if normalized:
            return np.maximum(raw.astype(np.float64) / NORMALISED_DIVISORS[ctype], -1.0)
        return np.ascontiguousarray(raw)

    def _strided(self, view_index: int, offset: int, ctype: int, columns: int, rows: int, count: int,
                 where: str, packed: bool = False) -> np.ndarray:
        """[count, columns*rows] view of a bufferView, after checking every byte it touches is inside."""
        buffer, view_offset, view_length, view_stride = self._view(view_index)
        dtype = DTYPES[ctype]
        size = dtype.itemsize
        column_stride = rows * size if columns == 1 else -(-rows * size // 4) * 4  # matrix columns 4-byte aligned
        element = columns * column_stride
        stride = element if packed else view_stride or element
        if stride < element:
            raise self.doc.fail(MalformedAsset, f"bufferViews[{view_index}].byteStride {stride} is smaller than an "
                                                f"element of {where} ({element} bytes)")
        end = offset + stride * (count - 1) + element
        if end > view_length:
            raise self.doc.fail(MalformedAsset, f"{where} ({count} elements, bytes {offset}..{end}) runs past "
                                                f"bufferViews[{view_index}] ({view_length} bytes)")
        if columns == 1:  # scalars and vectors: no column padding
            return np.ndarray((count, rows), dtype=dtype, buffer=buffer, offset=view_offset + offset,
                              strides=(stride, size))
        view_array = np.ndarray((count, columns, rows), dtype=dtype, buffer=buffer, offset=view_offset + offset,
                                strides=(stride, column_stride, size))
        return view_array.reshape(count, columns * rows)

    def _view(self, view_index: int) -> tuple[bytes, int, int, int]:
        """(buffer, byteOffset, byteLength, byteStride or 0) of a bufferView inside its buffer (checked, cached)."""
        if view_index not in self._views:
            view_where = f"bufferViews[{view_index}]"
            view = self.buffer_views[view_index]
            buffer_index = self.doc.index(view, "buffer", "buffers", view_where)
            buffer = self.doc.buffers[buffer_index]
            view_offset = self.doc.integer(view, "byteOffset", view_where, 0)
            view_length = self.doc.integer(view, "byteLength", view_where, minimum=1)
            if view_offset + view_length > len(buffer):
                raise self.doc.fail(MalformedAsset, f"{view_where} (bytes {view_offset}..{view_offset + view_length}) "
                                                    f"runs past buffers[{buffer_index}] ({len(buffer)} bytes)")
            stride = self.doc.integer(view, "byteStride", view_where, 0)
            self._views[view_index] = (buffer, view_offset, view_length, stride)
        return self._views[view_index]

    def _apply_sparse(self, acc: dict, raw: np.ndarray, ctype: int, columns: int, rows: int, count: int,
                      where: str) -> np.ndarray:
        sparse = self.doc.obj(acc, "sparse", where)
        swhere = f"{where}.sparse"
        n = self.doc.integer(sparse, "count", swhere, minimum=1)
        if n > count:
            raise self.doc.fail(MalformedAsset, f"{swhere}.count {n} exceeds the accessor count {count}")
        indices = self.doc.obj(sparse, "indices", swhere)
        itype = indices.get("componentType")
        if itype not in SPARSE_INDEX_TYPES:
            raise self.doc.fail(MalformedAsset, f"{swhere}.indices.componentType {itype!r} is not an index type")
        idx_view = self.doc.index(indices, "bufferView", "bufferViews", f"{swhere}.indices")
        idx = self._strided(idx_view, self.doc.integer(indices, "byteOffset", f"{swhere}.indices", 0), itype, 1, 1,
                            n, f"{swhere}.indices", packed=True)[:, 0].astype(np.int64)
        if idx.size and idx.max() >= count:
            raise self.doc.fail(BadData, f"{swhere}.indices reference element {int(idx.max())} of {count}")
        values = self.doc.obj(sparse, "values", swhere)
        val_view = self.doc.index(values, "bufferView", "bufferViews", f"{swhere}.values")
        vals = self._strided(val_view, self.doc.integer(values, "byteOffset", f"{swhere}.values", 0), ctype, columns,
                             rows, n, f"{swhere}.values", packed=True)
        dense = np.array(raw, copy=True)
        dense[idx] = vals
        return dense
