"""A multiple-choice task scored as lm-eval's local-completions model scores one, against `bitplane serve`.

Standard library only (lm-eval itself cannot be installed on these machines: PyPI is not reachable). It speaks the
same protocol: the remote tokenizer (GET /tokenizer_info, POST /tokenize with add_special_tokens false), then for
each item one /v1/completions request with the choices' prompts as a batch of token id arrays, max_tokens 1,
logprobs 1, echo true, temperature 0, and reads the answer as LocalCompletionsAPI.parse_logprobs does: the sum of
token_logprobs[ctxlen:-1]. The task: the last sentence of a TinyStories validation paragraph against three other
paragraphs' last sentences; acc picks the likeliest, acc_norm the likeliest per byte.

usage: python3 multiple_choice.py http://127.0.0.1:8080 [items] [path to tinystories_validation_head.txt]
"""
import json, sys, urllib.request, random, re, time
base = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
data = sys.argv[3] if len(sys.argv) > 3 else "../shared/data/tinystories_validation_head.txt"
def call(path, body=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())
info = call("/tokenizer_info"); assert "eos_token" in info
def enc(text): return call("/tokenize", {"prompt": text, "add_special_tokens": False})["tokens"]
# lm-eval's add_bos_token=True: the model was trained with BOS before each story.
bos = call("/tokenize", {"prompt": "", "add_special_tokens": True})["tokens"]
paras = [p.strip() for p in open(data).read().split("\n\n") if p.strip()]
items = []
for p in paras:
    s = re.split(r'(?<=[.!?])\s+', p)
    if len(s) >= 3: items.append((" ".join(s[:-1]), " " + s[-1]))
rnd = random.Random(0); items = items[:n]
acc = accn = 0; t0 = time.time(); reqs = 0
for i, (ctx, cont) in enumerate(items):
    others = [items[j][1] for j in rnd.sample(range(len(items)), 4) if j != i][:3]
    choices = [cont] + others
    prompts, ctxlens = [], []
    cenc = enc(ctx)
    for c in choices:
        whole = enc(ctx + c)
        prompts.append(bos + whole); ctxlens.append(len(bos) + len(cenc))
    out = call("/v1/completions", {"model": None, "prompt": prompts, "temperature": 0, "max_tokens": 1,
                                   "logprobs": 1, "seed": 1234, "echo": True}); reqs += 1
    res = []
    for ch, cl in zip(sorted(out["choices"], key=lambda c: c["index"]), ctxlens):
        lp = ch["logprobs"]["token_logprobs"][cl:-1]
        res.append(sum(lp))
    best = max(range(4), key=lambda k: res[k]); acc += best == 0
    norm = max(range(4), key=lambda k: res[k] / len(choices[k].encode())); accn += norm == 0
print(json.dumps({"items": len(items), "acc": acc / len(items), "acc_norm": accn / len(items),
                  "seconds": round(time.time() - t0, 1), "requests": reqs}))
