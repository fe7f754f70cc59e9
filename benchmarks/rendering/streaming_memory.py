"""Memory and loader speed with an on-disk unlabeled pool."""

from __future__ import annotations

from .common import table_header, repository_relative, json_section, capability


def streaming_lines() -> list[str]:
    """benchmarks/streaming.py: peak memory against the unlabeled pool's size, and loader against step rate."""
    files, lines = json_section("streaming-*.json", "Memory and loader speed with an on-disk unlabeled pool")
    for res in files:
        lines += [f"`hybridwrap train` on an ImageFolder at {res['size']} px (CIFAR-10 PNGs upscaled when read), "
                  f"{res['backbone']} with the `{res['decoder']}` decoder, full HybridNet + Mean Teacher, batches of "
                  f"{res['batch'][0]} labeled + {res['batch'][1]} unlabeled, {res['steps']} steps, default loader "
                  f"workers; {res['device']}, {res['cpus']} CPUs, {capability(res)}. Peak memory is the largest sum over the training "
                  "process and its loader workers, sampled every 0.1 s (PSS counts shared pages once; the RSS sum "
                  "counts them in every process).", "",
                  *table_header("| unlabeled images on disk | peak PSS (MiB) | peak RSS sum (MiB) | processes | s/step | "
                  "images/s the step consumes |")]
        for pool in res["pools"]:
            t = pool["train"]
            consumed = pool["training_consumes_images_per_s"]
            lines.append(f"| {pool['unlabeled_images']} | {t['peak_pss_mib']:.0f} | {t['peak_rss_sum_mib']:.0f} | "
                         f"{t['processes_at_peak']} | {t['step_s']:.2f} | {consumed:.1f} |")
        first, last = res["pools"][0], res["pools"][-1]
        lines += ["", f"Peak PSS grows by **{res['pss_growth_mib']:.0f} MiB** from {first['unlabeled_images']} to "
                      f"{last['unlabeled_images']} unlabeled images.", "",
                  "The loader alone: the same batches with no model, each image decoded and upscaled once and augmented "
                  "twice (the student's and the teacher's view), measured after the training runs, so not while a "
                  "training step competes for the same cores:", "",
                  *table_header("| unlabeled images | workers | images/s | × what the training step consumes |")]
        for pool in res["pools"]:
            for r in pool["loader"]:
                ratio = r["images_per_s"] / pool["training_consumes_images_per_s"]
                lines.append(f"| {pool['unlabeled_images']} | {r['workers']} | {r['images_per_s']:.0f} | {ratio:.0f}× |")
        lines += ["", "```bash", repository_relative(res["command"]), "```", ""]
    return lines
