"""Parses FHIR resources with two independent FHIR libraries: fhirclient (SMART on FHIR's R4
models, strict: an unknown element, a wrong type or a missing required element fails) and
fhir.resources (its R4B pydantic models). Usage: python fhir_parse.py RESOURCES.ndjson
Prints one line per resource that fails; exits 1 if any did."""
import importlib
import json
import sys

from fhirclient.models import fhirelementfactory
from fhir.resources.R4B import get_fhir_model_class

checked = failed = 0
with open(sys.argv[1], encoding="utf-8") as lines:
    for line in lines:
        if not line.strip():
            continue
        resource = json.loads(line)
        kind = resource.get("resourceType")
        name = f"{kind}/{resource.get('id', '(no id)')}"
        checked += 1
        try:
            parsed = fhirelementfactory.FHIRElementFactory.instantiate(kind, resource)
            # strict models: a resource that reads back differently lost or changed something.
            back = parsed.as_json()
            if kind and back.get("resourceType") != kind:
                raise ValueError(f"read back as {back.get('resourceType')}")
        except Exception as error:  # noqa: BLE001 - any refusal is the finding
            failed += 1
            print(f"FAIL fhirclient {name}: {error}")
        try:
            get_fhir_model_class(kind).parse_obj(resource)
        except Exception as error:  # noqa: BLE001
            failed += 1
            print(f"FAIL fhir.resources {name}: {error}")
print(f"checked {checked}, failed {failed}")
sys.exit(1 if failed else 0)
