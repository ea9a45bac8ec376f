"""pynetdicom as a Modality Worklist SCU against Seldinger's listener (crates/dicom/tests).

Usage: mwl_scu.py PORT CALLED_AE CALLING_AE query STATION DATE
       mwl_scu.py PORT CALLED_AE CALLING_AE cancel

`query` prints one JSON object: the final status and, per match, the values a modality reads.
`cancel` sends a C-FIND and its C-CANCEL before reading any response, then prints how many
pending responses came and the final status.
"""
import json
import sys
import time
from io import BytesIO

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import ModalityWorklistInformationFind

PENDING = (0xFF00, 0xFF01)


def worklist_query(station="", date=""):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword in ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
                    "PatientSex", "AccessionNumber", "StudyInstanceUID",
                    "RequestedProcedureID", "RequestedProcedureDescription", "Allergies"):
        setattr(ds, keyword, "")
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = ""
    step.Modality = ""
    step.ScheduledProcedureStepID = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def text(ds, keyword):
    value = ds.get(keyword, "")
    return "" if value is None else str(value)


def main():
    port, called, calling, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    ae = AE(ae_title=calling)
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        print(json.dumps({"error": "association not established"}))
        sys.exit(2)
    if mode == "query":
        station, date = sys.argv[5], sys.argv[6]
        matches, final = [], None
        for status, identifier in assoc.send_c_find(
                worklist_query(station, date), ModalityWorklistInformationFind):
            if status.Status in PENDING:
                step = identifier.ScheduledProcedureStepSequence[0]
                matches.append({
                    "status": status.Status,
                    "name": text(identifier, "PatientName"),
                    "id": text(identifier, "PatientID"),
                    "issuer": text(identifier, "IssuerOfPatientID"),
                    "accession": text(identifier, "AccessionNumber"),
                    "study": text(identifier, "StudyInstanceUID"),
                    "station": text(step, "ScheduledStationAETitle"),
                    "date": text(step, "ScheduledProcedureStepStartDate"),
                    "time": text(step, "ScheduledProcedureStepStartTime"),
                    "modality": text(step, "Modality"),
                })
            else:
                final = status.Status
        print(json.dumps({"final": final, "matches": matches}))
    elif mode == "cancel":
        # Pause the association's reactor, as pynetdicom's own send_* methods do, so that it
        # does not take the responses off the queue before this script reads them.
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.0001)
        context = assoc._get_valid_context(ModalityWorklistInformationFind, "", "scu")
        syntax = context.transfer_syntax[0]
        request = C_FIND()
        request.MessageID = 7
        request.AffectedSOPClassUID = ModalityWorklistInformationFind
        request.Priority = 2
        request.Identifier = BytesIO(
            encode(worklist_query(), syntax.is_implicit_VR, syntax.is_little_endian))
        assoc.dimse.send_msg(request, context.context_id)
        assoc.send_c_cancel(7, context.context_id)
        pending, final = 0, None
        while final is None:
            _, response = assoc.dimse.get_msg(block=True)
            if response is None:
                break
            if response.Status in PENDING:
                pending += 1
            else:
                final = response.Status
        assoc._reactor_checkpoint.set()
        print(json.dumps({"pending": pending, "final": final}))
    assoc.release()


if __name__ == "__main__":
    main()
