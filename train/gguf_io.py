"""Minimal GGUF v2/v3 reader and writer for the chorus training tools.

Reads the metadata and tensors of a GGUF file (weights are dequantized to
float32 numpy arrays on request) and writes small GGUF files such as the
forecast embeddings. Only numpy and the standard library are used, so the
format code can be tested without torch.

Layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 kv
count, kv pairs (string key, u32 type, value), tensor infos (string name, u32
n_dims, u64 dims[n_dims] with ne0 first, u32 type, u64 offset), padding to
general.alignment (default 32), then tensor data, each tensor's offset
relative to the start of the data section and itself aligned.
"""

import os
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# Metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32 = 0, 1, 2, 3, 4, 5, 6
T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 7, 8, 9, 10, 11, 12

_SCALAR_FMT = {
    T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h",
    T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?",
    T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d",
}
_SCALAR_NP = {
    T_UINT8: "<u1", T_INT8: "<i1", T_UINT16: "<u2", T_INT16: "<i2",
    T_UINT32: "<u4", T_INT32: "<i4", T_FLOAT32: "<f4", T_BOOL: "<u1",
    T_UINT64: "<u8", T_INT64: "<i8", T_FLOAT64: "<f8",
}

# Tensor types: id -> (name, elements per block, bytes per block).
GGML_F32, GGML_F16 = 0, 1
TENSOR_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 30: ("BF16", 1, 2),
}


class GGUFError(Exception):
    """A malformed or unsupported GGUF file; the message names file and field."""


class TensorInfo:
    def __init__(self, name, dims, ggml_type, offset):
        self.name = name
        self.dims = dims  # ne0 first: [cols, rows] for a row-major matrix
        self.type = ggml_type
        self.offset = offset  # relative to the data section

    @property
    def type_name(self):
        return TENSOR_TYPES.get(self.type, ("type %d" % self.type,))[0]

    @property
    def n_elements(self):
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def n_bytes(self):
        _, block, size = TENSOR_TYPES[self.type]
        return self.n_elements // block * size

    @property
    def shape(self):
        """numpy shape (row-major): the GGUF dims reversed."""
        return tuple(reversed(self.dims))


class _Cursor:
    def __init__(self, buf, path):
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise GGUFError("%s: truncated file while reading %s" % (self.path, what))
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt, what):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, what))[0]

    def string(self, what):
        n = self.unpack("<Q", what)
        if n > 1 << 30:
            raise GGUFError("%s: implausible string length %d in %s" % (self.path, n, what))
        raw = bytes(self.take(n, what))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("utf-8", errors="replace")

    def value(self, vtype, what):
        if vtype in _SCALAR_FMT:
            return self.unpack(_SCALAR_FMT[vtype], what)
        if vtype == T_STRING:
            return self.string(what)
        if vtype == T_ARRAY:
            etype = self.unpack("<I", what)
            n = self.unpack("<Q", what)
            if n > 1 << 31:
                raise GGUFError("%s: implausible array length %d in %s" % (self.path, n, what))
            if etype in _SCALAR_NP:
                size = np.dtype(_SCALAR_NP[etype]).itemsize
                arr = np.frombuffer(self.take(n * size, what), dtype=_SCALAR_NP[etype])
                return arr.astype(bool) if etype == T_BOOL else arr
            return [self.value(etype, what) for _ in range(n)]
        raise GGUFError("%s: unknown metadata type %d in %s" % (self.path, vtype, what))


class GGUFReader:
    """Parses a whole GGUF file held in memory (np.memmap, so pages load lazily)."""

    def __init__(self, path):
        self.path = path
        if not os.path.isfile(path):
            raise GGUFError("%s: no such file" % path)
        if os.path.getsize(path) < 24:
            raise GGUFError("%s: not a GGUF file (too short)" % path)
        self._buf = np.memmap(path, dtype=np.uint8, mode="r")
        cur = _Cursor(memoryview(self._buf), path)
        if bytes(cur.take(4, "magic")) != GGUF_MAGIC:
            raise GGUFError("%s: not a GGUF file (bad magic)" % path)
        self.version = cur.unpack("<I", "version")
        if self.version not in (2, 3):
            raise GGUFError("%s: unsupported GGUF version %d" % (path, self.version))
        n_tensors = cur.unpack("<Q", "tensor count")
        n_kv = cur.unpack("<Q", "kv count")
        if n_tensors > 1 << 20 or n_kv > 1 << 20:
            raise GGUFError("%s: implausible tensor/kv count" % path)
        self.fields = {}
        self.field_types = {}
        for _ in range(n_kv):
            key = cur.string("metadata key")
            vtype = cur.unpack("<I", "type of " + key)
            self.fields[key] = cur.value(vtype, key)
            self.field_types[key] = vtype
        self.tensors = {}
        for _ in range(n_tensors):
            name = cur.string("tensor name")
            n_dims = cur.unpack("<I", "n_dims of " + name)
            if n_dims > 4:
                raise GGUFError("%s: tensor %s has %d dims" % (path, name, n_dims))
            dims = [cur.unpack("<Q", "dims of " + name) for _ in range(n_dims)]
            ttype = cur.unpack("<I", "type of " + name)
            offset = cur.unpack("<Q", "offset of " + name)
            if ttype not in TENSOR_TYPES:
                raise GGUFError("%s: tensor %s has unknown type %d" % (path, name, ttype))
            self.tensors[name] = TensorInfo(name, dims, ttype, offset)
        self.alignment = int(self.fields.get("general.alignment", DEFAULT_ALIGNMENT))
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise GGUFError("%s: bad general.alignment %d" % (path, self.alignment))
        self.data_offset = _align(cur.pos, self.alignment)
        for t in self.tensors.values():
            _, block, _ = TENSOR_TYPES[t.type]
            if t.dims and t.dims[0] % block:
                raise GGUFError("%s: tensor %s: row of %d is not a multiple of block %d"
                                % (path, t.name, t.dims[0], block))
            end = self.data_offset + t.offset + t.n_bytes
            if end > len(self._buf):
                raise GGUFError("%s: tensor %s extends past the end of the file" % (path, t.name))

    def get(self, key, default=None):
        return self.fields.get(key, default)

    def raw(self, name):
        t = self.tensors[name]
        start = self.data_offset + t.offset
        return np.asarray(self._buf[start:start + t.n_bytes])

    def tensor(self, name):
        """The tensor as a float32 numpy array of shape reversed(dims)."""
        if name not in self.tensors:
            raise GGUFError("%s: missing tensor %s" % (self.path, name))
        t = self.tensors[name]
        try:
            flat = dequantize(self.raw(name), t.type, t.n_elements)
        except NotImplementedError:
            raise GGUFError("%s: tensor %s has unsupported type %s" % (self.path, name, t.type_name))
        return flat.reshape(t.shape)


def _align(n, a):
    return (n + a - 1) // a * a


# ---------------------------------------------------------------------------
# Dequantization (vectorized; layouts as in ggml's reference dequantizers).

def _f16(b):
    return b.copy().view("<f2").astype(np.float32)


def _scale_min_k4(scales):
    """Six-bit scales and mins of Q4_K/Q5_K: scales is (n, 12) uint8 -> (n, 8) each."""
    s = scales.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    mn = np.empty((s.shape[0], 8), np.int32)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def dequantize(raw, ggml_type, n):
    name, block, size = TENSOR_TYPES[ggml_type]
    raw = np.ascontiguousarray(raw)
    if name == "F32":
        return raw.view("<f4").astype(np.float32)
    if name == "F16":
        return raw.view("<f2").astype(np.float32)
    if name == "BF16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    if name == "F64":
        return raw.view("<f8").astype(np.float32)
    b = raw.reshape(-1, size)
    if name == "Q8_0":
        d = _f16(b[:, 0:2])
        q = b[:, 2:34].view(np.int8).astype(np.float32)
        return (q * d).reshape(-1)
    if name in ("Q4_0", "Q4_1"):
        off = 2 if name == "Q4_0" else 4
        qs = b[:, off:off + 16]
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.float32)
        d = _f16(b[:, 0:2])
        if name == "Q4_0":
            return ((q - 8.0) * d).reshape(-1)
        return (q * d + _f16(b[:, 2:4])).reshape(-1)
    if name in ("Q5_0", "Q5_1"):
        hoff = 2 if name == "Q5_0" else 4
        qh = b[:, hoff:hoff + 4].copy().view("<u4").astype(np.uint32)  # (n, 1)
        qs = b[:, hoff + 4:hoff + 20].astype(np.uint32)
        bits = (qh >> np.arange(32, dtype=np.uint32)) & 1  # (n, 32)
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1) | (bits << 4)
        q = q.astype(np.float32)
        d = _f16(b[:, 0:2])
        if name == "Q5_0":
            return ((q - 16.0) * d).reshape(-1)
        return (q * d + _f16(b[:, 2:4])).reshape(-1)
    if name in ("Q4_K", "Q5_K"):
        d = _f16(b[:, 0:2])
        dmin = _f16(b[:, 2:4])
        sc, mn = _scale_min_k4(b[:, 4:16])
        if name == "Q4_K":
            qs = b[:, 16:144].reshape(-1, 4, 32)
            hi = None
        else:
            qh = b[:, 16:48]
            qs = b[:, 48:176].reshape(-1, 4, 32)
        out = np.empty((b.shape[0], 4, 2, 32), np.float32)
        for c in range(4):
            lo_q = (qs[:, c, :] & 0xF).astype(np.float32)
            hi_q = (qs[:, c, :] >> 4).astype(np.float32)
            if name == "Q5_K":
                lo_q += ((qh >> (2 * c)) & 1).astype(np.float32) * 16
                hi_q += ((qh >> (2 * c + 1)) & 1).astype(np.float32) * 16
            out[:, c, 0] = d * sc[:, 2 * c:2 * c + 1] * lo_q - dmin * mn[:, 2 * c:2 * c + 1]
            out[:, c, 1] = d * sc[:, 2 * c + 1:2 * c + 2] * hi_q - dmin * mn[:, 2 * c + 1:2 * c + 2]
        return out.reshape(-1)
    if name == "Q6_K":
        d = _f16(b[:, 208:210])
        sc = b[:, 192:208].view(np.int8).astype(np.float32)
        out = np.empty((b.shape[0], 2, 4, 32), np.float32)
        for half in range(2):
            ql = b[:, 64 * half:64 * half + 64].astype(np.int32)
            qh = b[:, 128 + 32 * half:128 + 32 * half + 32].astype(np.int32)
            q1 = ((ql[:, :32] & 0xF) | (((qh >> 0) & 3) << 4)) - 32
            q2 = ((ql[:, 32:] & 0xF) | (((qh >> 2) & 3) << 4)) - 32
            q3 = ((ql[:, :32] >> 4) | (((qh >> 4) & 3) << 4)) - 32
            q4 = ((ql[:, 32:] >> 4) | (((qh >> 6) & 3) << 4)) - 32
            # one scale per 16 elements: is = l // 16
            s = sc[:, 8 * half:8 * half + 8]
            for j, q in enumerate((q1, q2, q3, q4)):
                scale = np.repeat(s[:, 2 * j:2 * j + 2], 16, axis=1)
                out[:, half, j] = d * scale * q.astype(np.float32)
        return out.reshape(-1)
    raise NotImplementedError(name)


# ---------------------------------------------------------------------------
# Writer.

class GGUFWriter:
    """Collects metadata and F32/F16 tensors, then writes a GGUF v3 file."""

    def __init__(self, alignment=DEFAULT_ALIGNMENT):
        self.kv = []  # (key, type, value)
        self.tensors = []  # (name, np array, ggml type)
        self.alignment = alignment

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def add_string(self, key, value):
        self.add(key, T_STRING, value)

    def add_u32(self, key, value):
        self.add(key, T_UINT32, int(value))

    def add_f32(self, key, value):
        self.add(key, T_FLOAT32, float(value))

    def add_tensor(self, name, array, ggml_type=GGML_F32):
        dtype = {GGML_F32: "<f4", GGML_F16: "<f2"}[ggml_type]
        self.tensors.append((name, np.ascontiguousarray(array, dtype=dtype), ggml_type))

    @staticmethod
    def _string(s):
        raw = s.encode("utf-8")
        return struct.pack("<Q", len(raw)) + raw

    def _value(self, vtype, value):
        if vtype in _SCALAR_FMT:
            return struct.pack(_SCALAR_FMT[vtype], value)
        if vtype == T_STRING:
            return self._string(value)
        raise GGUFError("writer: unsupported metadata type %d" % vtype)

    def to_bytes(self):
        out = bytearray(GGUF_MAGIC)
        kv = list(self.kv)
        if self.alignment != DEFAULT_ALIGNMENT:
            kv.append(("general.alignment", T_UINT32, self.alignment))
        out += struct.pack("<IQQ", 3, len(self.tensors), len(kv))
        for key, vtype, value in kv:
            out += self._string(key) + struct.pack("<I", vtype) + self._value(vtype, value)
        offset = 0
        offsets = []
        for name, arr, ttype in self.tensors:
            offsets.append(offset)
            dims = list(reversed(arr.shape)) if arr.ndim else [1]
            out += self._string(name) + struct.pack("<I", len(dims))
            out += b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", ttype, offset)
            offset = _align(offset + arr.nbytes, self.alignment)
        out += b"\0" * (_align(len(out), self.alignment) - len(out))
        data_start = len(out)
        for (name, arr, _), off in zip(self.tensors, offsets):
            out += b"\0" * (data_start + off - len(out))
            out += arr.tobytes()
        return bytes(out)

    def write(self, path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(self.to_bytes())
        os.replace(tmp, path)


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fingerprint(output_norm):
    """16 hex digits of FNV-1a 64 over the f32 little-endian bytes of output_norm.weight."""
    data = np.ascontiguousarray(output_norm, dtype="<f4").tobytes()
    return "%016x" % fnv1a64(data)
