"""CPU speed options of a training step."""

from __future__ import annotations

from .common import table_header, json_section, capability


def step_option_lines() -> list[str]:
    files, lines = json_section("step-options-*.json", "CPU speed options (measured before adopting)")
    for res in files:
        lines += [f"Full HybridNet + Mean Teacher training step, ConvLarge width {res['width']}, batch {res['batch']}, "
                  f"{res['threads']} threads, {capability(res)}; options interleaved in one process, median of rounds.", "",
                  *table_header("| option | s/step | speed-up vs fp32 |")]
        for name, o in res["options"].items():
            lines.append(f"| {name} | {o['median_step_s']:.3f} | {o['speedup_vs_fp32']:.2f}× |")
        for name, err in res.get("errors", {}).items():
            lines.append(f"| {name} | failed: {err} | - |")
        lines += [""]
    return lines
