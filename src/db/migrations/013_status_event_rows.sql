-- The event log keeps one row per statement instead of one row per event (src/state/events.ts):
-- a transition's statement appends a single row holding the JSON array of the events it produced,
-- in order. A claim of eight executions wrote 16 rows and sent 16 NOTIFYs; it now writes one row
-- and sends nothing: the live stream's readers poll this table (src/events/bus.ts). Issue 13: the
-- queue benchmark's row writes per execution had gone from 5.8 to 10.9 with a row per event.
--
-- Event ids stay numbers that order every event of the cluster: the row's `seq` plus the event's
-- index in `events`. The sequence steps by 1000, so a row owns the ids seq .. seq + 999 and holds at
-- most 1000 events (a statement that produces more writes several rows). Events of migration 008
-- are carried over, one per row, under their old ids; new rows start at the next multiple of 1000.
CREATE TABLE status_event_rows (
  seq     bigint GENERATED ALWAYS AS IDENTITY (INCREMENT BY 1000) PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  -- [{"kind","execution_id","job_id","step_id"?,"status","at","reason"?,"error"?}, ...]; json, not
  -- jsonb: written once by the statement that builds it, read back as written.
  events  json NOT NULL
);

INSERT INTO status_event_rows (seq, at, events) OVERRIDING SYSTEM VALUE
SELECT seq, at, json_build_array(json_strip_nulls(json_build_object(
         'kind', kind, 'execution_id', execution_id, 'job_id', job_id, 'step_id', step_id,
         'status', status, 'at', at, 'reason', reason, 'error', error)))
FROM status_events ORDER BY seq;

SELECT setval(pg_get_serial_sequence('status_event_rows', 'seq'),
              (coalesce((SELECT max(seq) FROM status_events), 0) / 1000 + 1) * 1000, false);

DROP TABLE status_events;
ALTER TABLE status_event_rows RENAME TO status_events;
ALTER INDEX status_event_rows_pkey RENAME TO status_events_pkey;
