"""HED weights moved to :mod:`napari_interfaces.nets.hed_weights`; this path re-exports them."""

from __future__ import annotations

from ..nets.hed_weights import (
    BSDS500_FILE,
    BSDS500_SHA256,
    FINETUNED_FILE,
    FINETUNED_SHA256,
    HOW_TO_GET,
    available,
    bsds500_state_dict,
    convert_h5,
    find_bsds500_h5,
    finetuned_state_dict,
    load_hed,
    state_digest,
)

__all__ = [
    "BSDS500_FILE",
    "BSDS500_SHA256",
    "FINETUNED_FILE",
    "FINETUNED_SHA256",
    "HOW_TO_GET",
    "available",
    "bsds500_state_dict",
    "convert_h5",
    "find_bsds500_h5",
    "finetuned_state_dict",
    "load_hed",
    "state_digest",
]
