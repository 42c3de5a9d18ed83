-- `folio report` (and the weekly summary) reads the tickets opened in a period and the survey
-- answers given in it. Without these indexes every report scans every ticket and every answer
-- ever stored; with them it reads the period's rows only. Each costs one index entry per ticket
-- opened and per survey answered.
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX satisfaction_answered ON satisfaction (answered_at);
