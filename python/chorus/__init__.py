"""chorus for Python: LLaMA-family models on CPUs with LoRA adapters,
multi-stream decoding and DS2D speculation, over libchorus.so's C API
(include/chorus/chorus_c.h) through ctypes: no compiled extension.

    import chorus
    with chorus.Runtime("models/stories260K.gguf", adapter_slots=1,
                        adapter_max_rank=8) as rt:
        rt.load_adapter("dog", "models/adapters/dog.gguf")
        r = rt.generate("Once upon a time", n_predict=40, temperature=0,
                        streams=[chorus.Stream(adapter="dog"), chorus.Stream()])
        for s in r.streams:
            print(s.adapter or "base", s.text)

The library is $CHORUS_LIBRARY, else the one installed beside this module,
else the system's libchorus.so.0. Errors raise chorus.Error with the
library's one-line message. Runtime.chat_format renders a conversation with
the model's chat template (or a named one).
"""
from .runtime import Ds2dReport, Error, Result, Runtime, Stream, StreamResult, version

__all__ = ["Ds2dReport", "Error", "Result", "Runtime", "Stream", "StreamResult", "version"]
