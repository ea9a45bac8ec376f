-- The sender's identifier of a lab result (a FHIR Observation's): the same result sent again is
-- recognised (conditional create) and can never be recorded twice.
ALTER TABLE lab_results ADD COLUMN identifier TEXT;
CREATE UNIQUE INDEX lab_results_identifier ON lab_results (identifier);
