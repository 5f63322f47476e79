"""The external data an ONNX model refers to, read straight from its protobuf bytes.

An ONNX tensor may keep its values in another file (``data_location: EXTERNAL`` with a
``location`` entry). onnxruntime opens such files relative to a folder, and for a model
given as bytes that folder is the process's working directory. baton therefore lists
every external reference before a model is loaded, so that each one can be required to
be a file of the bundle, listed in its manifest and hashed.

This walks the wire format of the few messages that can hold tensors (``ModelProto``,
``GraphProto``, ``NodeProto``, ``AttributeProto``, ``FunctionProto``,
``TrainingInfoProto``, ``SparseTensorProto``, ``TensorProto``), skipping everything else
by its length, so it needs neither the ``onnx`` package nor a copy of the data.
"""

from __future__ import annotations

#: message -> {field number: message it holds}, for the fields that can lead to a tensor
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _FUNCTION, _TRAINING, _SPARSE, _TENSOR = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _FUNCTION: {7: _NODE, 11: _ATTRIBUTE},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1
#: graphs nest inside attributes; deeper than this is not a model anyone wrote
_MAX_DEPTH = 64


class MalformedModel(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedModel("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def records(buf: memoryview, start: int, end: int):  # type: ignore[no-untyped-def]
    """Every field of the message in ``buf[start:end]``: (field number, wire type, the
    varint's value for wire type 0, else the (start, end) of its bytes)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
            continue
        if wire == 2:
            size, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise MalformedModel(f"unknown wire type {wire}")
        if pos + size > end:
            raise MalformedModel("a field runs past the end of its message")
        yield number, wire, (pos, pos + size)
        pos += size


def _fields(buf: memoryview, start: int, end: int):  # type: ignore[no-untyped-def]
    """(field number, varint value or None, (start, end) of a length-delimited field)."""
    for number, wire, value in records(buf, start, end):
        if wire == 0:
            yield number, value, None
        elif wire == 2:
            yield number, None, value


def _text(buf: memoryview, span: tuple[int, int]) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedModel("a string field is not UTF-8") from exc


def _tensor(buf: memoryview, start: int, end: int) -> tuple[str, str] | None:
    """(tensor name, external location) of an external tensor, else None."""
    name, location, external = "", None, False
    for number, value, span in _fields(buf, start, end):
        if number == _DATA_LOCATION and value is not None:
            external = value == _EXTERNAL
        elif number == _TENSOR_NAME and span is not None:
            name = _text(buf, span)
        elif number == _EXTERNAL_DATA and span is not None:
            key = val = ""
            for n, _, s in _fields(buf, *span):
                if s is not None and n in (1, 2):
                    if n == 1:
                        key = _text(buf, s)
                    else:
                        val = _text(buf, s)
            if key == "location":
                location = val
    if external or location is not None:
        return name, location or ""
    return None


def external_references(model: bytes) -> list[tuple[str, str]]:
    """Every (tensor name, location) whose data lives outside the model bytes; raises
    :class:`MalformedModel` when the bytes are not a protobuf message."""
    buf = memoryview(model)
    found: list[tuple[str, str]] = []
    stack = [(_MODEL, 0, len(buf), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise MalformedModel(f"graphs nested over {_MAX_DEPTH} deep")
        if kind == _TENSOR:
            ref = _tensor(buf, start, end)
            if ref is not None:
                found.append(ref)
            continue
        children = _CHILDREN[kind]
        for number, _, span in _fields(buf, start, end):
            if span is not None and number in children:
                stack.append((children[number], span[0], span[1], depth + 1))
    return found
