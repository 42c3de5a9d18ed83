-- Analysis attempts move to a file of their own beside the database (`<file>-attempts`,
-- created at open: store::attempts_url). Recording one before a batch's analyses start then
-- never waits for the batch being stored, which holds this file's one write lock. The rows
-- are transient (analyses running, or cut short by a crash); any left here are dropped, so a
-- message that crashed folio just before the upgrade gets its two attempts afresh.
DROP TABLE analysis_attempts;
