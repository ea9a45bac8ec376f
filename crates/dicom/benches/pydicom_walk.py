"""The peer for `cargo bench -p seldinger-dicom --bench ingest`: the same files read by pydicom
(dcmread, then a walk of the whole SR content tree reading every numeric value), timed inside
Python so interpreter start-up is not counted. Prints one JSON line."""
import json
import sys
import time

from pydicom import dcmread


def walk(items):
    values = 0
    for item in items:
        if "MeasuredValueSequence" in item and len(item.MeasuredValueSequence):
            float(item.MeasuredValueSequence[0].NumericValue)
            values += 1
        if "ContentSequence" in item:
            values += walk(item.ContentSequence)
    return values


def main():
    files = sys.argv[1:]
    size = 0
    values = 0
    start = time.perf_counter()
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        size += len(data)
        ds = dcmread(path)
        values += walk(ds.get("ContentSequence", []))
    elapsed = time.perf_counter() - start
    print(json.dumps({"files": len(files), "bytes": size, "seconds": elapsed, "values": values}))


main()
