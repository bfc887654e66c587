#!/usr/bin/env python3
"""egi on the GPU against PyTorch on the same GPU: reads what tools/gpu-check.sh wrote and
writes OUT/report.json (every figure) and OUT/report.md (the table docs/gpu.md quotes).

Checks (tolerances from issue 15):
- per response token, logit / log-prob / entropy of egi (f32) vs PyTorch (f32): 1e-3 absolute;
  egi bf16 reported beside them;
- per token and q/k/v/o matrix, egi's nuclear norm (per-token mode, f32) vs PyTorch's naive
  backward + full SVD: 1e-3 relative.
Speed: seconds per fingerprinted token of both (the same texts), egi's step mode per
response against PyTorch's cost for the same response, decoding throughput at batch 1 and 64,
and the GPU's measured bf16 matmul rate.

Standard library only (runs with the machine's python3)."""
import argparse, glob, json, os


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def maybe(fn, *a):
    try:
        return fn(*a)
    except Exception as e:  # a missing or failed step: reported, not fatal
        return {"error": f"{type(e).__name__}: {e}"}


def score_check(torch_fp, egi_lines):
    """Max abs differences of logit / logprob / entropy over tokens both sides have."""
    egi = {l["id"]: {t["pos"]: t for t in l["tokens"]} for l in egi_lines}
    worst = {"logit": 0.0, "logprob": 0.0, "entropy": 0.0}
    n, id_mismatch = 0, 0
    for case in torch_fp["cases"]:
        e = egi.get(case["id"], {})
        for t in case["tokens"]:
            et = e.get(t["pos"])
            if et is None:
                continue
            if et["id"] != t["id"]:
                id_mismatch += 1
                continue
            n += 1
            for k in worst:
                worst[k] = max(worst[k], abs(et[k] - t[k]))
    return {"tokens_compared": n, "token_id_mismatches": id_mismatch,
            **{f"max_abs_{k}": v for k, v in worst.items()}}


def fp_check(torch_fp, egi_resp):
    egi = {r["id"]: {t["pos"]: t for t in r["tokens"]} for r in egi_resp}
    worst_rel, worst_infl, n, nm = 0.0, 0.0, 0, 0
    for case in torch_fp["cases"]:
        e = egi.get(case["id"], {})
        for t in case["tokens"]:
            et = e.get(t["pos"])
            if et is None or et["id"] != t["id"] or "nuclear" not in et:
                continue
            n += 1
            for a, b in zip(et["nuclear"], t["nuclear"]):
                nm += 1
                worst_rel = max(worst_rel, abs(a - b) / max(abs(b), 1e-30))
            worst_infl = max(worst_infl, abs(et["influence"] - t["influence"]) / max(abs(t["influence"]), 1e-30))
    return {"tokens_compared": n, "matrices_compared": nm,
            "max_rel_nuclear": worst_rel, "max_rel_influence": worst_infl}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    w, o = a.work, a.out
    rep = {"steps": maybe(load_jsonl, f"{o}/steps.jsonl")}
    def torch_fp():
        # One file per case (tools/gpu-check.sh runs them one at a time).
        parts = [json.load(open(p)) for p in sorted(glob.glob(f"{w}/torch_fp_*.json"))]
        if not parts:
            raise FileNotFoundError("no torch_fp_*.json: the PyTorch fingerprint did not finish")
        merged = dict(parts[0])
        merged["cases"] = [c for p in parts for c in p["cases"]]
        return merged
    tfp = maybe(torch_fp)
    if "error" not in tfp:
        rep["gpu"] = tfp.get("gpu")
        rep["torch"] = tfp.get("torch")
        ttok = sum(len(c["tokens"]) for c in tfp["cases"])
        tsec = sum(c["seconds"] for c in tfp["cases"])
        rep["torch_fingerprint"] = {"tokens": ttok, "seconds": tsec,
                                    "seconds_per_token": tsec / max(ttok, 1)}
        rep["score_f32"] = maybe(lambda: score_check(tfp, load_jsonl(f"{w}/egi_score_f32.jsonl")))
        rep["score_bf16"] = maybe(lambda: score_check(tfp, load_jsonl(f"{w}/egi_score_bf16.jsonl")))
        rep["fingerprint_f32"] = maybe(lambda: fp_check(tfp, load_jsonl(f"{w}/egi_fp/responses.jsonl")))
    else:
        rep["torch_fingerprint"] = tfp

    def egi_speed(d):
        s = json.load(open(f"{d}/summary.json"))
        resp = load_jsonl(f"{d}/responses.jsonl")
        return {"seconds_per_token": s.get("seconds_per_token"), "probe_seconds": s.get("probe_seconds"),
                "wall_seconds": s.get("wall_seconds"),
                "responses": [{"id": r["id"], "n_tokens": r["n_tokens"], "seconds": r.get("seconds"),
                               "rho_token": r.get("rho_token"), "rho_step": r.get("rho_step")} for r in resp]}
    rep["egi_fingerprint"] = maybe(egi_speed, f"{w}/egi_fp")
    rep["egi_fingerprint_step"] = maybe(egi_speed, f"{w}/egi_fp_step")
    rep["matmul"] = maybe(lambda: json.load(open(f"{o}/torch_matmul.json")))
    gen = {}
    for dt in ["f32", "bf16"]:
        t = maybe(lambda: json.load(open(f"{o}/torch_generate_{dt}.json")))
        def egi_bench(dt=dt):
            lines = [l for l in open(f"{w}/egi_bench_{dt}.txt") if l.startswith("{")]
            return json.loads(lines[-1])
        gen[dt] = {"torch": t, "egi": maybe(egi_bench)}
    rep["generate"] = gen

    # Ratios and verdicts.
    ok = {}
    sf = rep.get("score_f32", {})
    if "max_abs_logit" in sf:
        ok["score_f32_within_1e-3"] = sf["tokens_compared"] >= 20 and max(
            sf["max_abs_logit"], sf["max_abs_logprob"], sf["max_abs_entropy"]) <= 1e-3
    ff = rep.get("fingerprint_f32", {})
    if "max_rel_nuclear" in ff:
        ok["nuclear_f32_within_1e-3_rel"] = ff["tokens_compared"] >= 20 and ff["max_rel_nuclear"] <= 1e-3
    tf, ef, es = rep.get("torch_fingerprint", {}), rep.get("egi_fingerprint", {}), rep.get("egi_fingerprint_step", {})
    if tf.get("seconds_per_token") and ef.get("seconds_per_token"):
        rep["speedup_per_token_mode"] = tf["seconds_per_token"] / ef["seconds_per_token"]
    if tf.get("seconds_per_token") and "responses" in es:
        # PyTorch's naive cost of a whole response = its per-token time x the response's tokens.
        naive = sum(r["n_tokens"] for r in es["responses"]) * tf["seconds_per_token"]
        mine = sum(r["seconds"] or 0 for r in es["responses"])
        if mine > 0:
            rep["speedup_step_mode"] = naive / mine
    rep["checks"] = ok
    json.dump(rep, open(f"{o}/report.json", "w"), indent=1)

    # The table.
    L = [f"# egi on {rep.get('gpu')} vs PyTorch {rep.get('torch')} (same GPU, same run)", "",
         "| figure | egi | PyTorch | ratio / check |", "|---|---|---|---|"]
    def f(x, spec=".3g"):
        return "n/a" if x is None else format(x, spec)
    if "max_abs_logit" in sf:
        L.append(f"| logit / logprob / entropy, f32, max abs diff ({sf['tokens_compared']} tokens) | "
                 f"{f(sf['max_abs_logit'])} / {f(sf['max_abs_logprob'])} / {f(sf['max_abs_entropy'])} | reference | "
                 f"{'ok' if ok.get('score_f32_within_1e-3') else 'FAIL'} (1e-3) |")
    sb = rep.get("score_bf16", {})
    if "max_abs_logit" in sb:
        L.append(f"| same, egi bf16 vs PyTorch f32 | {f(sb['max_abs_logit'])} / {f(sb['max_abs_logprob'])} / "
                 f"{f(sb['max_abs_entropy'])} | reference | reported |")
    if "max_rel_nuclear" in ff:
        L.append(f"| q/k/v/o nuclear norms, f32, max rel diff ({ff['tokens_compared']} tokens x "
                 f"{ff['matrices_compared'] // max(ff['tokens_compared'], 1)} matrices) | {f(ff['max_rel_nuclear'])} | reference | "
                 f"{'ok' if ok.get('nuclear_f32_within_1e-3_rel') else 'FAIL'} (1e-3) |")
    if rep.get("speedup_per_token_mode"):
        L.append(f"| fingerprint, per-token mode, s / token | {f(ef['seconds_per_token'])} | "
                 f"{f(tf['seconds_per_token'])} | {rep['speedup_per_token_mode']:.1f}x (goal 20x) |")
    if rep.get("speedup_step_mode"):
        L.append(f"| fingerprint, step mode (sum-logits), whole responses | | | "
                 f"{rep['speedup_step_mode']:.0f}x (goal 200x) |")
    for dt, g in gen.items():
        t, e = g["torch"], g["egi"]
        trows = {r["batch"]: r["tokens_per_s"] for r in t.get("rows", [])} if "rows" in t else {}
        if "decode_b1_tok_s" in e:
            for b, ev in [(1, e["decode_b1_tok_s"]), (e["decode_batch"], e["decode_batch_tok_s"])]:
                tv = trows.get(b)
                L.append(f"| decode {dt}, batch {b}, tokens/s | {f(ev, '.0f')} | {f(tv, '.0f')} | "
                         f"{f(ev / tv if tv else None, '.2f')}x |")
        else:
            L.append(f"| decode {dt} | {e.get('error')} | {f(trows.get(1), '.0f')} / {f(trows.get(64), '.0f')} | |")
    m = rep.get("matmul", {})
    if "tflops" in m:
        L.append(f"| bf16 matmul {m['n']}^3 (PyTorch), TFLOP/s | | {m['tflops']:.0f} | |")
    for s in rep["steps"] if isinstance(rep["steps"], list) else []:
        if s["rc"] != 0:
            L.append(f"| step `{s['step']}` | failed (rc {s['rc']}) | | see log.txt |")
    open(f"{o}/report.md", "w").write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
