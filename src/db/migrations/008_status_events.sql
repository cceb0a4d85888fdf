-- The event log of execution and step status changes (src/state/events.ts). Every transition in
-- src/state writes its events here in the same statement as the rows it changes, and sends each
-- on NOTIFY vecron_events from that statement, so an event exists (and is announced) exactly when
-- its change was committed. `seq` orders them; the live stream
-- (/api/v1/events) sends it as the event id, and a client that reconnects with Last-Event-ID gets
-- what it missed from this table. Rows are pruned after VECRON_EVENT_RETENTION_SECONDS.
-- No foreign keys: the log outlives deleted jobs until it is pruned, and appending stays one
-- index entry per event (the primary key, always at its right edge).
CREATE TABLE status_events (
  seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  kind          text NOT NULL CHECK (kind IN ('execution', 'step')),
  execution_id  uuid NOT NULL,
  job_id        uuid NOT NULL,
  step_id       text,
  status        text NOT NULL,
  reason        text,
  error         jsonb
);

-- Why a step did not run ('an earlier step failed', 'not on the route taken', ...); null otherwise.
ALTER TABLE step_runs ADD COLUMN reason text;
