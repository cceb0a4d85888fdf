-- The event log of execution and step status changes (src/state/events.ts). Every transition in
-- src/state writes its events here in the same statement as the rows it changes, so an event
-- exists exactly when its change was committed. `seq` orders them; the live stream
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

-- The one definition of an event's JSON shape: used by the NOTIFY below and by replays.
CREATE FUNCTION status_event_json(e status_events) RETURNS json LANGUAGE sql IMMUTABLE AS $$
  SELECT json_strip_nulls(json_build_object('seq', e.seq, 'kind', e.kind, 'execution_id', e.execution_id,
         'job_id', e.job_id, 'step_id', e.step_id, 'status', e.status, 'at', e.at, 'reason', e.reason, 'error', e.error))
$$;

-- Each inserted event is announced on NOTIFY vecron_events (delivered at commit, in seq order).
-- NOTIFY payloads are limited to 8000 bytes: a larger event is announced by its seq alone and the
-- listener reads it from the table.
CREATE FUNCTION status_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT n.seq, status_event_json(n)::text AS payload FROM new_events n ORDER BY n.seq LOOP
    PERFORM pg_notify('vecron_events', CASE WHEN octet_length(r.payload) < 7900 THEN r.payload
                                            ELSE json_build_object('seq', r.seq)::text END);
  END LOOP;
  RETURN NULL;
END
$$;
CREATE TRIGGER status_events_notify AFTER INSERT ON status_events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION status_events_notify();

-- Why a step did not run ('an earlier step failed', 'not on the route taken', ...); null otherwise.
ALTER TABLE step_runs ADD COLUMN reason text;
