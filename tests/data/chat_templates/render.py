#!/usr/bin/env python3
"""Renders the real chat templates in this folder with Python's jinja2, the
way Hugging Face transformers' apply_chat_template does (sandboxed
environment, trim_blocks, lstrip_blocks, loop controls, raise_exception),
over a set of conversations, and writes expected.json: the strings (or the
template's exception messages) chorus's C++ formatter must reproduce byte for
byte (src/chat/chat_template_test.cc).

  python3 render.py           rewrite expected.json
  python3 render.py --check   exit 0 if expected.json is current, 1 if not,
                              77 if jinja2 is not installed (Debian: python3-jinja2)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "expected.json")

# File, the chorus template name it must be recognised as, and the BOS / EOS
# texts of the model that carries it.
TEMPLATES = [
    ("chatml.jinja", "chatml", "<s>", "<|im_end|>"),  # OpenHermes-2.5-Mistral-7B
    ("smollm2.jinja", "chatml", "<|im_start|>", "<|im_end|>"),  # SmolLM2-Instruct
    ("qwen2.5.jinja", "chatml", "", "<|im_end|>"),  # Qwen2.5-Instruct (no BOS token)
    ("llama2.jinja", "llama2", "<s>", "</s>"),  # Llama-2-7b-chat-hf
    ("llama3.jinja", "llama3", "<|begin_of_text|>", "<|eot_id|>"),  # Meta-Llama-3-8B-Instruct
    ("zephyr.jinja", "zephyr", "<s>", "</s>"),  # TinyLlama-1.1B-Chat-v1.0
    ("mistral-v0.1.jinja", "mistral-v0.1", "<s>", "</s>"),  # Mistral-7B-Instruct-v0.1
    ("mistral-v0.2.jinja", "mistral-v0.2", "<s>", "</s>"),  # Mixtral-8x7B-Instruct-v0.1
    ("mistral-v1.jinja", "mistral-v1", "<s>", "</s>"),  # Mistral-7B-Instruct-v0.2 (later)
    ("mistral-v3.jinja", "mistral-v3", "<s>", "</s>"),  # Mistral-Large-Instruct-2407
    ("mistral-v3-tekken.jinja", "mistral-v3-tekken", "<s>", "</s>"),  # Mistral-Nemo-Instruct-2407
    ("mistral-v7.jinja", "mistral-v7", "<s>", "</s>"),  # Mistral-Large-Instruct-2411
    ("gemma.jinja", "gemma", "<bos>", "<eos>"),  # gemma-7b-it, gemma-2-9b-it
    ("phi3.jinja", "phi3", "<s>", "<|endoftext|>"),  # Phi-3-mini-4k-instruct
    ("phi3.5.jinja", "phi3", "<s>", "<|endoftext|>"),  # Phi-3.5-mini-instruct
]

S = "system"
U = "user"
A = "assistant"
CONVERSATIONS = [
    [(U, "Hello")],
    [(S, "You are a helpful assistant"), (U, "Hello")],
    [(U, "Hello"), (A, "Hi there"), (U, "Who are you")],
    [(S, "You are a helpful assistant"), (U, "Hello"), (A, "Hi there"), (U, "Who are you"),
     (A, "   I am an assistant   "), (U, "Another question")],
    [(S, "Be brief."), (U, "Name a colour."), (A, "Blue.")],
    [(U, "Hi"), (A, "Hello! How can I help?")],
    [(U, "  padded question\n"), (A, "\u00a0answer with no-break spaces\u3000"), (U, "\tnext\u2028")],
    [(S, ""), (U, "Empty system prompt")],
    [(S, "  system with spaces  "), (U, "Q")],
    [(U, "line one\nline two\n\nline four")],
    [(U, "Gr\u00fc\u00dfe \U0001f44b <b>bold</b> & \"quotes\" 'single'")],
    [(U, "Literal <|im_end|> and [INST] and <end_of_turn> in text")],
    [(S, "Persona."), (U, "One"), (A, "Two"), (U, "Three"), (A, "Four"), (U, "Five"), (A, "Six"),
     (U, "Seven")],
    [(A, "I speak first")],
    [(U, "Twice"), (U, "in a row")],
    [(S, "First"), (S, "Second"), (U, "Q")],
    [(U, "Q"), (S, "A system turn in the middle")],
    [(U, "Q"), (A, "A"), (S, "late system"), (U, "Q2")],
    [(S, "Only a system prompt")],
    [(U, "")],
    [(U, "Q"), ("developer", "another role"), (A, "A")],
]


def environment():
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    return env


def render_all():
    import jinja2

    env = environment()
    cases = []
    for file, name, bos, eos in TEMPLATES:
        with open(os.path.join(HERE, file), encoding="utf-8", newline="") as f:
            template = env.from_string(f.read())
        for index, conversation in enumerate(CONVERSATIONS):
            messages = [{"role": r, "content": c} for r, c in conversation]
            for add_generation_prompt in (True, False):
                case = {"template": file, "name": name, "bos_token": bos, "eos_token": eos,
                        "conversation": index, "add_generation_prompt": add_generation_prompt}
                try:
                    case["expected"] = template.render(messages=messages, bos_token=bos, eos_token=eos,
                                                       add_generation_prompt=add_generation_prompt)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    conversations = [[{"role": r, "content": c} for r, c in conv] for conv in CONVERSATIONS]
    # One conversation or case per line: small, and diffs show what changed.
    lines = lambda items: ",\n".join("  " + json.dumps(x, ensure_ascii=False) for x in items)
    return ('{"generator": "tests/data/chat_templates/render.py", "jinja2": %s,\n'
            '"conversations": [\n%s\n],\n"cases": [\n%s\n]}\n'
            % (json.dumps(jinja2.__version__), lines(conversations), lines(cases)))


def main():
    try:
        import jinja2  # noqa: F401
    except ImportError:
        print("SKIP: python3-jinja2 is not installed (apt-get install python3-jinja2)")
        return 77
    text = render_all()
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            old = json.load(f)
        new = json.loads(text)
        # Only the rendered cases must agree; the jinja2 version may differ.
        if old["cases"] != new["cases"] or old["conversations"] != new["conversations"]:
            print("expected.json is out of date: run tests/data/chat_templates/render.py")
            return 1
        print(f"expected.json is current ({len(new['cases'])} cases, jinja2 {new['jinja2']})")
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
