#!/usr/bin/env python3
"""How the step-influence modes agree (docs/method.md, "Step influence"): reads `egi
fingerprint` runs over the same texts, one per `--step-mode`, and prints a markdown table:
per mode, how its per-response rho_step agrees with `mean` (METHOD's definition: Spearman
across responses, mean difference) and how strongly its step influence follows the step's
length (Spearman between a step's token count and its influence, pooled over all steps, and
the median of the per-response values).

    tools/step_mode_agreement.py mean=DIR1 mean-logit=DIR2 sum-logits=DIR3 [--json OUT]

Standard library only."""
import json, statistics, sys


def ranks(x):
    idx = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[idx[j + 1]] == x[idx[i]]:
            j += 1
        for k in range(i, j + 1):
            r[idx[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    if len(a) < 3:
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    sa = sum((x - ma) ** 2 for x in ra) ** 0.5
    sb = sum((y - mb) ** 2 for y in rb) ** 0.5
    if sa == 0 or sb == 0:
        return None
    return sum((x - ma) * (y - mb) for x, y in zip(ra, rb)) / (sa * sb)


def load(d):
    out = {}
    for line in open(f"{d}/responses.jsonl"):
        r = json.loads(line)
        if "skipped" not in r:
            out[r["id"]] = r
    return out


def main():
    args = [a for a in sys.argv[1:] if "=" in a]
    out_json = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    runs = {k: load(v) for k, v in (a.split("=", 1) for a in args)}
    ref = runs.get("mean")
    if ref is None:
        sys.exit("give mean=DIR (the reference)")
    ids = sorted(set.intersection(*(set(r) for r in runs.values())))
    rows = []
    for mode, run in runs.items():
        pairs = [(ref[i]["rho_step"], run[i]["rho_step"]) for i in ids
                 if ref[i]["rho_step"] is not None and run[i]["rho_step"] is not None]
        lens, infl, per = [], [], []
        for i in ids:
            st = run[i]["steps"]
            n = [s["n_tokens"] for s in st]
            v = [s["influence"] for s in st]
            lens += n
            infl += v
            r = spearman(n, v)
            if r is not None:
                per.append(r)
        rows.append({
            "mode": mode,
            "responses": len(ids),
            "rho_step_defined": len(pairs),
            "rho_step_mean": statistics.fmean(p[1] for p in pairs) if pairs else None,
            "spearman_vs_mean": spearman([p[0] for p in pairs], [p[1] for p in pairs]),
            "mean_diff_vs_mean": statistics.fmean(p[1] - p[0] for p in pairs) if pairs else None,
            "length_influence_pooled": spearman(lens, infl),
            "length_influence_median": statistics.median(per) if per else None,
            "steps": len(lens),
        })
    f = lambda x: "n/a" if x is None else f"{x:+.3f}"
    print("| step mode | responses (rho_step defined) | mean rho_step | Spearman with `mean` across responses | mean difference from `mean` | Spearman(step length, step influence): pooled / median per response |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['mode']}` | {r['responses']} ({r['rho_step_defined']}) | {f(r['rho_step_mean'])} | "
              f"{f(r['spearman_vs_mean'])} | {f(r['mean_diff_vs_mean'])} | "
              f"{f(r['length_influence_pooled'])} / {f(r['length_influence_median'])} ({r['steps']} steps) |")
    if out_json:
        json.dump(rows, open(out_json, "w"), indent=1)


if __name__ == "__main__":
    main()
