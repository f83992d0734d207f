"""chorus.Runtime: the C API's runtime, request and result as Python
objects. Option and request settings are the C structs' field names; their
defaults come from the library's *_init functions, so there is one place
for each default (the C++ API)."""
import ctypes
import dataclasses
from typing import Callable, List, Optional, Sequence

from . import _native
from ._native import lib


class Error(RuntimeError):
    """A chorus error: the library's message names what is at fault."""


def version() -> str:
    return lib.chorus_version().decode()


def _raise_last_error():
    raise Error(lib.chorus_last_error().decode("utf-8", "replace"))


def _bytes(s):
    return None if s is None else s.encode("utf-8")


def _string_array(strings):
    """A C array of char* and what keeps its contents alive."""
    encoded = [s.encode("utf-8") for s in strings]
    return (ctypes.c_char_p * len(encoded))(*encoded), encoded


def _set_fields(struct, settings, what, skip=()):
    """Sets struct fields by name from settings; a name that is no setting is a TypeError."""
    known = {name for name, _ in struct._fields_} - {"struct_size"} - set(skip)
    for name, value in settings.items():
        if name not in known:
            raise TypeError(f"{what}: unknown setting '{name}' (known: {', '.join(sorted(known))})")
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, bool):
            value = int(value)
        setattr(struct, name, value)


@dataclasses.dataclass
class Stream:
    """One stream of a request: its adapter (None: the base model), a text
    after the shared prompt for it alone, its own seed (None: request seed +
    index), when >= 0, the rank of its first token (0 = greedy), and the
    adapter's scale for this request (None: the loaded scale)."""
    adapter: Optional[str] = None
    suffix: Optional[str] = None
    seed: Optional[int] = None
    first_token_rank: int = -1
    adapter_scale: Optional[float] = None


@dataclasses.dataclass
class StreamResult:
    text: str
    tokens: List[int]
    finish: str  # "length", "eog", "stop", "callback" or "cancelled"
    adapter: str  # "" for the base model


@dataclasses.dataclass
class Ds2dReport:
    steps: int
    trees: int
    tau: float  # mean tokens accepted per tree
    rows_per_step: float
    acceptance: List[float]  # [d - 1]: acceptance at depth d
    fallback: str  # ds2d="auto" that could not be set up: why


@dataclasses.dataclass
class Result:
    streams: List[StreamResult]
    prompt_tokens: List[int]
    ds2d: Ds2dReport
    timings: dict


class Runtime:
    """One model with a fixed pool of adapter slots (chorus_runtime).

    Settings are chorus_runtime_options' fields: threads, context,
    max_streams, max_rows, adapter_slots, adapter_max_rank, weights,
    output_head, tokenizer, ds2d ("off", "on", "auto"), ds2d_budget,
    ds2d_ngram, ds2d_row_cost, ds2d_find_forecasts, kv_type ("f16", "f32");
    ds2d_forecasts is a list of paths. One thread at a time, except
    cancel()."""

    def __init__(self, model: str, ds2d_forecasts: Sequence[str] = (), **settings):
        options = _native.RuntimeOptions()
        lib.chorus_runtime_options_init(ctypes.byref(options))
        _set_fields(options, settings, "Runtime", skip=("ds2d_forecasts", "n_ds2d_forecasts"))
        forecasts, keep = _string_array(ds2d_forecasts)
        options.ds2d_forecasts = ctypes.cast(forecasts, _native.c_strings)
        options.n_ds2d_forecasts = len(keep)
        self._rt = lib.chorus_runtime_open(model.encode("utf-8"), ctypes.byref(options))
        if not self._rt:
            _raise_last_error()

    def close(self):
        if getattr(self, "_rt", None):
            lib.chorus_runtime_close(self._rt)
            self._rt = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if not self._rt:
            raise Error("the runtime is closed")
        return self._rt

    def _check(self, status):
        if status < 0:
            _raise_last_error()
        return status

    def load_adapter(self, name: str, path: str, scale: float = 1.0):
        self._check(lib.chorus_load_adapter(self._handle(), _bytes(name), _bytes(path), scale))

    def unload_adapter(self, name: str):
        self._check(lib.chorus_unload_adapter(self._handle(), _bytes(name)))

    def set_adapter_scale(self, name: str, scale: float):
        self._check(lib.chorus_set_adapter_scale(self._handle(), _bytes(name), scale))

    def adapters(self) -> List[str]:
        n = self._check(lib.chorus_adapter_count(self._handle()))
        return [lib.chorus_adapter_name(self._rt, i).decode() for i in range(n)]

    def tokenize(self, text: str, add_bos: bool = True) -> List[int]:
        data = text.encode("utf-8")
        n = self._check(lib.chorus_tokenize(self._handle(), data, int(add_bos), None, 0))
        ids = (ctypes.c_int32 * n)()
        self._check(lib.chorus_tokenize(self._rt, data, int(add_bos), ids, n))
        return list(ids)

    def detokenize(self, ids: Sequence[int]) -> str:
        array = (ctypes.c_int32 * len(ids))(*ids)
        p = lib.chorus_detokenize(self._handle(), array, len(ids))
        if not p:
            _raise_last_error()
        try:
            return ctypes.string_at(p).decode("utf-8")
        finally:
            lib.chorus_free(p)

    def chat_format(self, messages: Sequence[dict], template: Optional[str] = None,
                    add_generation_prompt: bool = True):
        """The prompt the chat template renders for messages ({"role", "content"}
        dicts): the model's own template, or `template` (a name such as
        "chatml", or a Jinja file). Returns (text, add_bos): generate it with
        add_bos=add_bos, parse_special=True."""
        turns = (_native.ChatMessage * max(1, len(messages)))()
        for c, m in zip(turns, messages):
            c.role, c.content = _bytes(m["role"]), _bytes(m["content"])
        add_bos = ctypes.c_int(1)
        p = lib.chorus_chat_format(self._handle(), _bytes(template), turns, len(messages),
                                   int(add_generation_prompt), ctypes.byref(add_bos))
        if not p:
            _raise_last_error()
        try:
            return ctypes.string_at(p).decode("utf-8"), bool(add_bos.value)
        finally:
            lib.chorus_free(p)

    def info(self) -> dict:
        info = _native.RuntimeInfo()
        lib.chorus_runtime_info_init(ctypes.byref(info))
        self._check(lib.chorus_runtime_get_info(self._handle(), ctypes.byref(info)))
        out = {name: getattr(info, name) for name, _ in info._fields_ if name != "struct_size"}
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}

    def cancel(self):
        """Stops the generation running on another thread (chorus_cancel):
        its streams end at their next token with finish "cancelled"."""
        self._check(lib.chorus_cancel(self._handle()))

    def generate(self, prompt: str, streams: Optional[Sequence[Stream]] = None,
                 stop: Sequence[str] = (),
                 on_token: Optional[Callable[[int, int, str], Optional[bool]]] = None,
                 **settings) -> Result:
        """Runs a request. Settings are chorus_request's fields: n_predict,
        add_bos, ignore_eos, temperature, top_k, top_p, min_p, repeat_penalty,
        repeat_last_n, seed, speculate. on_token(stream, token, piece) is
        called per token; returning False stops that stream. The piece may
        be "" while text is held back (it may begin a stop string, or ends
        inside a UTF-8 character); held-back text that turns out not to be
        a stop arrives later, at the end with token -1."""
        req = _native.Request()
        lib.chorus_request_init(ctypes.byref(req))
        _set_fields(req, settings, "generate", skip=("prompt", "streams", "n_streams", "stop", "n_stop"))
        req.prompt = prompt.encode("utf-8")
        streams = list(streams or [])
        c_streams = (_native.StreamOptions * max(1, len(streams)))()
        for c, s in zip(c_streams, streams):
            lib.chorus_stream_options_init(ctypes.byref(c))
            c.adapter, c.suffix = _bytes(s.adapter), _bytes(s.suffix)
            c.has_seed, c.seed = int(s.seed is not None), s.seed or 0
            c.first_token_rank = s.first_token_rank
            c.has_adapter_scale = int(s.adapter_scale is not None)
            c.adapter_scale = s.adapter_scale or 0.0
        req.streams = c_streams
        req.n_streams = len(streams)
        stops, keep = _string_array(stop)
        req.stop = ctypes.cast(stops, _native.c_strings)
        req.n_stop = len(keep)

        raised = []

        def call(_user, stream, token, piece, length):
            try:
                keep_going = on_token(stream, token, ctypes.string_at(piece, length).decode("utf-8", "replace"))
                return 0 if keep_going is False else 1
            except BaseException as e:  # reraised after the C call; stops this stream
                raised.append(e)
                return 0

        callback = _native.TOKEN_CALLBACK(call) if on_token else _native.TOKEN_CALLBACK()
        res = lib.chorus_generate(self._handle(), ctypes.byref(req), callback, None)
        if raised:
            if res:
                lib.chorus_result_free(res)
            raise raised[0]
        if not res:
            _raise_last_error()
        try:
            return _result(res)
        finally:
            lib.chorus_result_free(res)


def _ids(getter):
    p = ctypes.POINTER(ctypes.c_int32)()
    n = getter(ctypes.byref(p))
    return [p[i] for i in range(n)]


def _result(res) -> Result:
    out = []
    for i in range(lib.chorus_result_stream_count(res)):
        out.append(StreamResult(
            text=lib.chorus_result_text(res, i).decode("utf-8"),
            tokens=_ids(lambda p: lib.chorus_result_tokens(res, i, p)),
            finish=lib.chorus_result_finish_reason(res, i).decode(),
            adapter=lib.chorus_result_adapter(res, i).decode()))
    report = _native.Ds2dReport()
    lib.chorus_ds2d_report_init(ctypes.byref(report))
    lib.chorus_result_ds2d(res, ctypes.byref(report))
    ds2d = Ds2dReport(steps=report.steps, trees=report.trees, tau=report.tau,
                      rows_per_step=report.rows_per_step,
                      acceptance=[report.acceptance[d] for d in range(report.n_acceptance)],
                      fallback=report.fallback.decode())
    timings = _native.Timings()
    lib.chorus_timings_init(ctypes.byref(timings))
    lib.chorus_result_timings(res, ctypes.byref(timings))
    return Result(streams=out, prompt_tokens=_ids(lambda p: lib.chorus_result_prompt_tokens(res, p)),
                  ds2d=ds2d,
                  timings={n: getattr(timings, n) for n, _ in timings._fields_ if n != "struct_size"})
