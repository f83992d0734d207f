"""The ctypes view of libchorus.so: where the library is, the C structs of
include/chorus/chorus_c.h field for field, and the functions' signatures.
Keep this file in step with that header (fields are only ever appended)."""
import ctypes
import ctypes.util
import glob
import os

c_int, c_float, c_double, c_char_p, c_void_p = (ctypes.c_int, ctypes.c_float, ctypes.c_double,
                                                 ctypes.c_char_p, ctypes.c_void_p)
c_size_t, c_int32, c_int64, c_uint64 = ctypes.c_size_t, ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64
c_strings = ctypes.POINTER(c_char_p)


class RuntimeOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("tokenizer", c_char_p), ("threads", c_int),
                ("context", c_int), ("max_streams", c_int), ("max_rows", c_int),
                ("adapter_slots", c_int), ("adapter_max_rank", c_int), ("weights", c_char_p),
                ("output_head", c_char_p), ("ds2d", c_char_p), ("ds2d_forecasts", c_strings),
                ("n_ds2d_forecasts", c_int), ("ds2d_budget", c_int), ("ds2d_ngram", c_int),
                ("ds2d_row_cost", c_float), ("ds2d_find_forecasts", c_int), ("kv_type", c_char_p)]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", c_char_p), ("content", c_char_p)]


class StreamOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("adapter", c_char_p), ("suffix", c_char_p),
                ("has_seed", c_int), ("seed", c_uint64), ("first_token_rank", c_int),
                ("has_adapter_scale", c_int), ("adapter_scale", c_float)]


class Request(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("prompt", c_char_p), ("add_bos", c_int),
                ("n_predict", c_int), ("ignore_eos", c_int), ("temperature", c_float),
                ("top_k", c_int), ("top_p", c_float), ("min_p", c_float),
                ("repeat_penalty", c_float), ("repeat_last_n", c_int), ("seed", c_uint64),
                ("streams", ctypes.POINTER(StreamOptions)), ("n_streams", c_int),
                ("stop", c_strings), ("n_stop", c_int), ("speculate", c_int),
                ("parse_special", c_int)]


class Timings(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("prompt_tokens", c_int), ("prompt_prefills", c_int),
                ("prefill_rows", c_int), ("generated_tokens", c_int), ("prompt_seconds", c_double),
                ("suffix_seconds", c_double), ("decode_seconds", c_double),
                ("total_seconds", c_double), ("kv_bytes_used", c_size_t)]


class Ds2dReport(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("steps", c_int64), ("trees", c_int64), ("tau", c_double),
                ("rows_per_step", c_double), ("acceptance", ctypes.POINTER(c_double)),
                ("n_acceptance", c_int), ("fallback", c_char_p)]


class RuntimeInfo(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("model_path", c_char_p), ("n_vocab", c_int),
                ("trained_context", c_int), ("context", c_int), ("max_streams", c_int),
                ("adapter_slots", c_int), ("adapter_max_rank", c_int), ("kernels", c_char_p),
                ("weight_bytes", c_size_t), ("kv_bytes", c_size_t), ("load_seconds", c_double),
                ("pack_seconds", c_double), ("ds2d", c_int), ("kv_type", c_char_p)]


TOKEN_CALLBACK = ctypes.CFUNCTYPE(c_int, c_void_p, c_int, c_int32, ctypes.POINTER(ctypes.c_char), c_size_t)
_ids = ctypes.POINTER(c_int32)

# name: (result type, argument types)
_SIGNATURES = {
    "chorus_version": (c_char_p, []),
    "chorus_last_error": (c_char_p, []),
    "chorus_runtime_options_init": (None, [ctypes.POINTER(RuntimeOptions)]),
    "chorus_stream_options_init": (None, [ctypes.POINTER(StreamOptions)]),
    "chorus_request_init": (None, [ctypes.POINTER(Request)]),
    "chorus_timings_init": (None, [ctypes.POINTER(Timings)]),
    "chorus_ds2d_report_init": (None, [ctypes.POINTER(Ds2dReport)]),
    "chorus_runtime_info_init": (None, [ctypes.POINTER(RuntimeInfo)]),
    "chorus_runtime_open": (c_void_p, [c_char_p, ctypes.POINTER(RuntimeOptions)]),
    "chorus_runtime_close": (None, [c_void_p]),
    "chorus_load_adapter": (c_int, [c_void_p, c_char_p, c_char_p, c_float]),
    "chorus_unload_adapter": (c_int, [c_void_p, c_char_p]),
    "chorus_set_adapter_scale": (c_int, [c_void_p, c_char_p, c_float]),
    "chorus_adapter_count": (c_int, [c_void_p]),
    "chorus_adapter_name": (c_char_p, [c_void_p, c_int]),
    "chorus_generate": (c_void_p, [c_void_p, ctypes.POINTER(Request), TOKEN_CALLBACK, c_void_p]),
    "chorus_cancel": (c_int, [c_void_p]),
    "chorus_result_stream_count": (c_int, [c_void_p]),
    "chorus_result_text": (c_char_p, [c_void_p, c_int]),
    "chorus_result_adapter": (c_char_p, [c_void_p, c_int]),
    "chorus_result_finish_reason": (c_char_p, [c_void_p, c_int]),
    "chorus_result_tokens": (c_int, [c_void_p, c_int, ctypes.POINTER(_ids)]),
    "chorus_result_prompt_tokens": (c_int, [c_void_p, ctypes.POINTER(_ids)]),
    "chorus_result_timings": (c_int, [c_void_p, ctypes.POINTER(Timings)]),
    "chorus_result_ds2d": (c_int, [c_void_p, ctypes.POINTER(Ds2dReport)]),
    "chorus_result_free": (None, [c_void_p]),
    "chorus_tokenize": (c_int, [c_void_p, c_char_p, c_int, _ids, c_int]),
    "chorus_detokenize": (c_void_p, [c_void_p, _ids, c_int]),
    "chorus_free": (None, [c_void_p]),
    "chorus_chat_format": (c_void_p, [c_void_p, c_char_p, ctypes.POINTER(ChatMessage), c_int, c_int,
                                      ctypes.POINTER(c_int)]),
    "chorus_runtime_get_info": (c_int, [c_void_p, ctypes.POINTER(RuntimeInfo)]),
}


def _library_path():
    """$CHORUS_LIBRARY, else the libchorus.so.0 of the prefix this module is
    installed under (PREFIX/share/chorus/python/chorus), else the system's."""
    path = os.environ.get("CHORUS_LIBRARY")
    if path:
        return path
    prefix = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))
    for pattern in ("lib/libchorus.so.0", "lib*/libchorus.so.0", "lib/*/libchorus.so.0"):
        found = sorted(glob.glob(os.path.join(prefix, pattern)))
        if found:
            return found[0]
    return ctypes.util.find_library("chorus") or "libchorus.so.0"


def load():
    lib = ctypes.CDLL(_library_path())
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = load()
