"""Chemical elements and isotopes used by ranging and the synthetic specimen.

Only what APT needs: the element symbols (to validate range files), and
natural isotope masses and abundances of the elements the synthetic
generator uses (Ni, Al, Cr, plus a few common in real data).

Examples
--------
>>> from napari_interfaces.aptmodel.elements import is_element, parse_formula
>>> is_element("Cr"), is_element("Xx")
(True, False)
>>> parse_formula("CrO2")
{'Cr': 1, 'O': 2}
"""

from __future__ import annotations

import re

__all__ = ["SYMBOLS", "ISOTOPES", "is_element", "parse_formula", "formula"]

#: Element symbols, Z = 1..118 (index + 1).
SYMBOLS: tuple[str, ...] = tuple(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn
    Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr
    Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr
    Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc
    Lv Ts Og""".split()
)
_SYMBOL_SET = frozenset(SYMBOLS)

#: Natural isotopes: element -> list of (mass in Da, abundance fraction).
ISOTOPES: dict[str, list[tuple[float, float]]] = {
    "H": [(1.00783, 0.99988), (2.01410, 0.00012)],
    "C": [(12.0, 0.9893), (13.00335, 0.0107)],
    "O": [(15.99491, 0.99757), (16.99913, 0.00038), (17.99916, 0.00205)],
    "Al": [(26.98154, 1.0)],
    "Si": [(27.97693, 0.92223), (28.97649, 0.04685), (29.97377, 0.03092)],
    "Cr": [(49.94604, 0.04345), (51.94051, 0.83789), (52.94065, 0.09501), (53.93888, 0.02365)],
    "Fe": [(53.93961, 0.05845), (55.93494, 0.91754), (56.93539, 0.02119), (57.93327, 0.00282)],
    "Ni": [
        (57.93534, 0.68077),
        (59.93079, 0.26223),
        (60.93106, 0.011399),
        (61.92835, 0.036346),
        (63.92797, 0.009255),
    ],
    "Cu": [(62.92960, 0.6915), (64.92779, 0.3085)],
}


def is_element(symbol: str) -> bool:
    """Whether ``symbol`` is a chemical element symbol (case-sensitive)."""
    return symbol in _SYMBOL_SET


_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_formula(text: str) -> dict[str, int]:
    """Element counts of a molecular-ion formula such as ``"CrO2"`` or ``"Cr2O"``.

    Raises
    ------
    ValueError
        When the text is not a formula of known elements.
    """
    text = text.strip()
    out: dict[str, int] = {}
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            break
        sym, n = m.group(1), m.group(2)
        if not is_element(sym):
            raise ValueError(f"unknown element {sym!r} in {text!r}")
        out[sym] = out.get(sym, 0) + (int(n) if n else 1)
        pos = m.end()
    if pos != len(text) or not out:
        raise ValueError(f"not a chemical formula: {text!r}")
    return out


def formula(composition: dict[str, int]) -> str:
    """Formula of an element-count dict in Hill order (C, H, then alphabetical).

    >>> formula({"O": 2, "Cr": 1})
    'CrO2'
    """

    def key(el: str) -> tuple[int, str]:
        return ({"C": 0, "H": 1}.get(el, 2) if "C" in composition else 2, el)

    return "".join(
        f"{el}{composition[el] if composition[el] != 1 else ''}"
        for el in sorted(composition, key=key)
        if composition[el]
    )
