"""Ablation presets: the rows of the paper's Table 1 and the loss-term lines a-i of Table 2.

A preset decides *which* parts of the model exist and *which* loss terms are on; the weights λ, the
stability method and every other setting stay those of the config. Table 2 columns are L_cls,
Ω_stability, L_rec (hybrid), L_rec-inter, branch balancing. Our copy of the paper lost some of Table 2's
check marks in extraction: lines c-e follow the text of §4.1 ("final reconstruction term (lines c)",
"addition of the intermediate reconstruction terms (lines d)", "branch balancing technique (lines
e)"); f-h add stability to growing subsets, g being our reading (stability + final reconstruction +
balancing).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    description: str
    decoder_c: bool  # D_c exists
    branch_u: bool  # E_u and D_u exist
    reconstruction: bool
    intermediate: bool
    balance: bool
    stability: bool


_T1 = {
    "classification": Preset("Table 1: classification (E_c + C)", False, False, False, False, False, False),
    "classification_stability": Preset("Table 1: classification and stability", False, False, False, False, False, True),
    "autoencoder": Preset("Table 1: auto-encoder (E_c + D_c + C)", True, False, True, True, False, False),
    "autoencoder_stability": Preset("Table 1: auto-encoder and stability", True, False, True, True, False, True),
    "hybrid_architecture": Preset("Table 1: HybridNet architecture (classification + reconstructions)",
                                  True, True, True, True, False, False),
    "full": Preset("Table 1: HybridNet architecture and full training loss", True, True, True, True, True, True),
}

_T2 = {
    "table2_a": Preset("Table 2 a: L_cls", False, False, False, False, False, False),
    "table2_b": Preset("Table 2 b: L_cls + Ω_stability", False, False, False, False, False, True),
    "table2_c": Preset("Table 2 c: L_cls + L_rec", True, True, True, False, False, False),
    "table2_d": Preset("Table 2 d: L_cls + L_rec + L_rec-inter", True, True, True, True, False, False),
    "table2_e": Preset("Table 2 e: L_cls + L_rec + L_rec-inter + balancing", True, True, True, True, True, False),
    "table2_f": Preset("Table 2 f: L_cls + Ω + L_rec", True, True, True, False, False, True),
    "table2_g": Preset("Table 2 g: L_cls + Ω + L_rec + balancing", True, True, True, False, True, True),
    "table2_h": Preset("Table 2 h: L_cls + Ω + L_rec + L_rec-inter", True, True, True, True, False, True),
    "table2_i": Preset("Table 2 i: all terms (= full)", True, True, True, True, True, True),
}

PRESETS: dict[str, Preset] = {**_T1, **_T2}
TABLE1 = tuple(_T1)


# the fields a preset sets (resolution.apply_preset), and how each follows from the preset's row
PRESET_FIELDS = {"model.discriminative_decoder": lambda p: p.decoder_c, "model.unsupervised_branch": lambda p: p.branch_u,
                 "loss.reconstruction": lambda p: p.reconstruction, "loss.intermediate": lambda p: p.intermediate,
                 "loss.balance": lambda p: p.balance}


def check_overrides(preset: str, overrides: list[str]) -> None:
    """A ``--set`` of a field the preset decides must agree with it: the preset would overwrite it silently.
    ``loss.stability`` may choose the method (mean_teacher, temporal_ensembling) of a preset with stability, and must
    be ``none`` for one without."""
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}. Choose one of: {', '.join(PRESETS)}.")
    p = PRESETS[preset]
    for item in overrides:
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip().lower()
        if key in PRESET_FIELDS:
            wanted = PRESET_FIELDS[key](p)
            asked = value in ("true", "1", "yes")
            if value in ("true", "false", "1", "0", "yes", "no") and asked != wanted:
                agree = [name for name, q in PRESETS.items() if PRESET_FIELDS[key](q) == asked]
                raise ConfigError(f"--set {item} contradicts the preset {preset!r}, which sets {key}={str(wanted).lower()} "
                                  f"({p.description}). Choose a preset with {key}={str(asked).lower()} "
                                  f"({', '.join(agree)}), or drop the --set.")
        elif key == "loss.stability" and (value == "none") == p.stability:
            raise ConfigError(f"--set {item} contradicts the preset {preset!r}, which "
                              f"{'uses' if p.stability else 'has no'} the stability term ({p.description}). Choose a "
                              f"preset {'without' if value == 'none' else 'with'} stability, or drop the --set.")
