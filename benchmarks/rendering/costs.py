"""Cost of a HybridNet against its backbone: time, FLOPs, memory."""

from __future__ import annotations

from .common import table_header, repository_relative, json_section, capability


def cost_lines() -> list[str]:
    files, lines = json_section("cost-*.json", "Cost")
    for res in files:
        lines += [f"Measured side by side in one process on {res['device']} ({res['threads']} threads, {capability(res)}), "
                  f"batch {res['batch']}, {res['precision']}; median of {res['rounds']} rounds. FLOPs from "
                  "`torch.utils.flop_counter` (the whole training step: forward, backward, teacher). The time ratio "
                  "divided by the FLOP ratio says how far the measured cost is from the FLOP-ideal multiple "
                  "(1.00 = exactly as predicted by FLOPs).", "",
                  *table_header("| backbone | setup | train step (s) | × backbone time | GFLOPs/step | × backbone FLOPs | "
                  "time ratio / FLOP ratio | trained parameters (M) | step memory above weights (MiB) |")]
        for b in res["backbones"]:
            base = b["setups"]["backbone"]
            for name, s in b["setups"].items():
                t_ratio = s["step_s"] / base["step_s"]
                f_ratio = s["gflops"] / base["gflops"]
                lines.append(f"| {b['name']} ({b['input']}) | {name} | {s['step_s']:.3f} | {t_ratio:.2f} | "
                             f"{s['gflops']:.2f} | {f_ratio:.2f} | {t_ratio / f_ratio:.2f} | {s['parameters_m']:.2f} | "
                             f"{s['peak_mib']:.0f} |")
        lines += ["", *table_header("| backbone | deployed classifier vs bare backbone: inference time ratio | parameters equal |")]
        for b in res["backbones"]:
            inf = b["inference"]
            lines.append(f"| {b['name']} | {inf['ratio']:.3f} (classifier {inf['classifier_s'] * 1e3:.1f} ms, "
                         f"bare {inf['bare_s'] * 1e3:.1f} ms) | {inf['same_parameters']} |")
        lines += ["", "```bash", repository_relative(res["command"]), "```", ""]
    return lines
