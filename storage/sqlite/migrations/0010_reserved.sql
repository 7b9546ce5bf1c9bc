-- A no-op: a release shipped this number reserved, and the databases it made
-- recorded version 10, so what was meant for it came later (0014_admission).
SELECT 1;
