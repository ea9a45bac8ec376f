-- A dose report names its patient by the ID the modality sent, whatever the site: the cases
-- it could belong to are found through this index, not by reading every case (issue 16: with
-- ten years of cases each C-STORE scanned them all). Kept in step with the other engine's 0025.
CREATE INDEX patients_mrn ON patients (mrn);
