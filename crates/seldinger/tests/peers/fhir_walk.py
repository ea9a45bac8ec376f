"""Walks a patient's record on a FHIR server with an independent client, fhirclient (SMART on
FHIR's Python client and R4 models): reads the CapabilityStatement, finds the patient by MRN,
then their ServiceRequests, the Procedures done, the radiation dose summaries of their cases,
the Devices left in them and their open Tasks,
following every Bundle's next links. Prints what it found as one JSON line.

Usage: python fhir_walk.py BASE TOKEN MRN_SYSTEM MRN
"""
import json
import sys

from fhirclient import client
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.device import Device
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.models.procedure import Procedure
from fhirclient.models.servicerequest import ServiceRequest
from fhirclient.models.task import Task

base, token, system, mrn = sys.argv[1:5]
smart = client.FHIRClient(settings={"app_id": "seldinger-walk", "api_base": base.rstrip("/") + "/"})
# A static API token: every request carries it (fhirclient's session headers).
smart.server.session.headers["Authorization"] = f"Bearer {token}"
server = smart.server

statement = CapabilityStatement.read_from("metadata", server)
served = sorted(r.type for r in statement.rest[0].resource)

patients = list(Patient.where(struct={"identifier": f"{system}|{mrn}"}).perform_resources_iter(server))
assert len(patients) == 1, f"one patient with MRN {mrn}, found {len(patients)}"
patient = patients[0]
reference = f"Patient/{patient.id}"

requests = list(
    ServiceRequest.where(struct={"patient": reference, "_count": "2"}).perform_resources_iter(server)
)
procedures = list(
    Procedure.where(struct={"patient": reference}).perform_resources_iter(server)
)
devices = list(Device.where(struct={"patient": reference}).perform_resources_iter(server))
doses = list(
    Observation.where(
        struct={"patient": reference, "code": "http://loinc.org|73569-6", "_count": "1"}
    ).perform_resources_iter(server)
)
tasks = list(
    Task.where(struct={"patient": reference, "status": "requested,ready", "_count": "1"}).perform_resources_iter(server)
)
# Read each dose summary again by id: the same as the search gave.
for dose in doses:
    again = Observation.read(dose.id, server)
    assert again.as_json() == dose.as_json(), f"Observation/{dose.id} reads as searched"

print(json.dumps({
    "served": served,
    "patient": patient.id,
    "family": patient.name[0].family,
    "service_requests": sorted(r.id for r in requests),
    "statuses": sorted({r.status for r in requests}),
    "doses": {
        d.id: {
            c.code.coding[0].code: (c.valueQuantity.value if c.valueQuantity else c.valueInteger)
            for c in d.component
            if c.code.coding[0].code != "121058"
        }
        for d in doses
    },
    "procedures": sorted(p.id for p in procedures),
    "devices": sorted(d.id for d in devices),
    "device_types": sorted(d.type.coding[0].code for d in devices),
    "open_tasks": sorted(t.id for t in tasks),
}))
