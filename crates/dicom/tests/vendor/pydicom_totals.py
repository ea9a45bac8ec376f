"""An independent reading of radiation dose reports with pydicom, for Seldinger's vendor tests.

For each file named on the command line, prints (as one JSON object keyed by file name) what the
report says, in SI units: per Accumulated X-Ray Dose container (113702), in document order, the
first dose-area product total (113722, Gy.m2), reference-point dose total (113725, Gy), total
fluoroscopy time (113730, s) and total acquisition time (113855, s) below it; for CT, the
accumulated DLP total (113813, Gy.m) and each CT acquisition's (113819) mean CTDIvol (113830, Gy).
Units are converted by this file's own table, written from UCUM and the vendor spellings seen in
the field, not from Seldinger's.
"""

import json
import sys

import pydicom

# To SI: Gy.m2, Gy, s, Gy.m. Vendor spellings beside their UCUM forms.
FACTORS = {
    "Gy.m2": 1.0, "Gym2": 1.0, "dGy.m2": 0.1, "cGy.m2": 0.01, "mGy.m2": 1e-3, "uGy.m2": 1e-6,
    "Gy.cm2": 1e-4, "dGy.cm2": 1e-5, "cGy.cm2": 1e-6, "mGy.cm2": 1e-7, "uGy.cm2": 1e-10,
    "Gy": 1.0, "dGy": 0.1, "cGy": 0.01, "mGy": 1e-3, "uGy": 1e-6,
    "s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0,
    "mGy.cm": 1e-5, "mGycm": 1e-5, "Gy.cm": 1e-2, "mGy.m": 1e-3, "Gy.m": 1.0,
}


def concept(item):
    seq = item.get("ConceptNameCodeSequence")
    return seq[0].CodeValue if seq else None


def children(item):
    return item.get("ContentSequence", [])


def num(item):
    """(value in SI, unit as written) of a NUM item, or None."""
    measured = item.get("MeasuredValueSequence")
    if not measured:
        return None
    mv = measured[0]
    value = float(mv.NumericValue)
    unit = mv.MeasurementUnitsCodeSequence[0].CodeValue
    factor = FACTORS.get(unit)
    return (value * factor if factor is not None else None, unit)


def first_below(items, code):
    for item in items:
        if item.get("ValueType") == "NUM" and concept(item) == code:
            return num(item)
        found = first_below(children(item), code)
        if found is not None:
            return found
    return None


def containers(items, code, out):
    for item in items:
        if item.get("ValueType") == "CONTAINER" and concept(item) == code:
            out.append(item)
        else:
            containers(children(item), code, out)
    return out


def reading(path):
    ds = pydicom.dcmread(path)
    top = children(ds)
    planes = []
    for c in containers(top, "113702", []):
        below = children(c)
        value = lambda code: (first_below(below, code) or (None, None))
        planes.append({
            "dap_total": value("113722")[0],
            "dap_unit": value("113722")[1],
            "dose_rp_total": value("113725")[0],
            "fluoro_time": value("113730")[0],
            "acquisition_time": value("113855")[0],
        })
    ct = None
    accumulated = containers(top, "113811", [])
    acquisitions = containers(top, "113819", [])
    if accumulated or acquisitions:
        dlp = first_below(children(accumulated[0]), "113813") if accumulated else None
        ct = {
            "dlp_total": dlp[0] if dlp else None,
            "dlp_unit": dlp[1] if dlp else None,
            "ctdivol": [
                (first_below(children(a), "113830") or (None, None))[0] for a in acquisitions
            ],
        }
    return {"manufacturer": str(ds.get("Manufacturer", "")), "planes": planes, "ct": ct}


if __name__ == "__main__":
    print(json.dumps({path: reading(path) for path in sys.argv[1:]}))
