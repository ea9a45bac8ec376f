"""pynetdicom as a Modality Performed Procedure Step SCU against Seldinger's listener
(crates/dicom/tests/mpps.rs). dcmtk has no free MPPS sender; pynetdicom is the independent peer.

Usage: mpps_scu.py PORT CALLED_AE CALLING_AE OPERATIONS_JSON

OPERATIONS_JSON is a list of {"op": "create" | "set", "uid": UID or null, "attrs": {keyword:
value}, "scheduled": {keyword: value} (the Scheduled Step Attribute Sequence's item, create only),
"discontinued": code meaning (set only), "omit": [keyword]}. Prints one JSON list: per operation
its status, error comment and the attribute identifier list, as the SCP answered.
"""
import json
import sys

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep

# What an angio system sends when it starts a step (PS3.4 Table F.7.2-1).
CREATE_DEFAULTS = {
    "PerformedStationAETitle": "ANGIO1",
    "PerformedStationName": "",
    "PerformedLocation": "",
    "Modality": "XA",
    "PerformedProcedureStepID": "PPS1",
    "PerformedProcedureStepStatus": "IN PROGRESS",
    "PerformedProcedureStepDescription": "",
    "PerformedProcedureStepEndDate": "",
    "PerformedProcedureStepEndTime": "",
    "PatientName": "",
    "PatientID": "",
    "PatientBirthDate": "",
    "PatientSex": "",
    "StudyID": "",
}


def create_dataset(operation):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    attrs = dict(CREATE_DEFAULTS)
    attrs.update(operation.get("attrs", {}))
    for keyword in operation.get("omit", []):
        attrs.pop(keyword, None)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    if "ScheduledStepAttributesSequence" not in operation.get("omit", []):
        item = Dataset()
        item.StudyInstanceUID = ""
        item.AccessionNumber = ""
        item.RequestedProcedureID = ""
        item.ScheduledProcedureStepID = ""
        item.ScheduledProcedureStepDescription = ""
        for keyword, value in operation.get("scheduled", {}).items():
            setattr(item, keyword, value)
        ds.ScheduledStepAttributesSequence = Sequence([item])
    ds.PerformedSeriesSequence = Sequence([])
    return ds


def set_dataset(operation):
    ds = Dataset()
    for keyword, value in operation.get("attrs", {}).items():
        setattr(ds, keyword, value)
    if operation.get("discontinued"):
        code = Dataset()
        code.CodeValue = "110514"
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = operation["discontinued"]
        ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = Sequence([code])
    return ds


def main():
    port, called, calling = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    operations = json.loads(sys.argv[4])
    ae = AE(ae_title=calling)
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        print(json.dumps({"error": "association not established"}))
        sys.exit(2)
    results = []
    for operation in operations:
        if operation["op"] == "create":
            status, _ = assoc.send_n_create(
                create_dataset(operation), ModalityPerformedProcedureStep, operation.get("uid"))
        else:
            status, _ = assoc.send_n_set(
                set_dataset(operation), ModalityPerformedProcedureStep, operation["uid"])
        if status is None or "Status" not in status:
            results.append({"status": None})
            continue
        listed = status.get("AttributeIdentifierList", [])
        if not isinstance(listed, (list, tuple)) and listed is not None:
            listed = [listed]
        results.append({
            "status": int(status.Status),
            "comment": str(status.get("ErrorComment", "")),
            "attributes": ["%08X" % int(tag) for tag in (listed or [])],
        })
    assoc.release()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
