import { useEffect, useMemo, useState, type DragEvent } from 'react';
import { Link, useLocation, useParams } from 'wouter';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Validator } from '@cfworker/json-schema';
import { api, ApiError, type Problem } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { useDebounced } from '../hooks.ts';
import type { Job, RateLimit, Schedule, Step } from '../types.ts';
import { ErrorNote, Field, Loading } from '../components/ui.tsx';
import { JsonField, SchemaForm } from '../components/schema-form.tsx';
import { WasmStepForm } from '../components/wasm-step.tsx';
import { FirePreview } from '../components/preview.tsx';
import type { MessageKey } from '../messages/en.ts';

interface StepTypeSchema {
  type: string;
  title: string;
  config_schema: Record<string, any>;
}
interface Doc {
  name: string;
  description?: string | null;
  schedule: Schedule | null;
  steps: Step[];
  variables?: Record<string, unknown>;
  timeout_seconds?: number;
  max_retries?: number;
  retry_backoff_seconds?: number;
  enabled?: boolean;
  misfire_policy?: string;
  overlap_policy?: string;
  webhook?: unknown;
  concurrency_key?: string | null;
  concurrency_limit?: number | null;
  rate_limit?: RateLimit | null;
}

const SERVER_FIELDS = ['id', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by'];
const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'Asia/Ho_Chi_Minh';

function fromJob(j: Job): Doc {
  const d: Record<string, unknown> = { ...j };
  for (const k of SERVER_FIELDS) delete d[k];
  if (j.webhook) d.webhook = j.webhook.rate_limit_per_minute ? { rate_limit_per_minute: j.webhook.rate_limit_per_minute } : null;
  return d as unknown as Doc;
}

const numberOrNull = (v: string): number | null => (v === '' ? null : Number(v));

/** concurrency_key, concurrency_limit and rate_limit (docs/jobs.md#concurrency-and-rate-limits). */
function LimitsCard({ doc, update, problems }: { doc: Doc; update: (d: Doc) => void; problems: ProblemMap }) {
  const { t } = useI18n();
  const rate = doc.rate_limit ?? null;
  const setRate = (r: Partial<RateLimit> | null) => {
    const next = r === null ? null : { limit: rate?.limit ?? 60, interval_seconds: rate?.interval_seconds ?? 60, per: rate?.per ?? 'job', ...r };
    update({ ...doc, rate_limit: next && (next.limit as number | null) !== null ? (next as RateLimit) : null });
  };
  return (
    <section className="card" aria-labelledby="limits-title">
      <h2 id="limits-title">{t('builder.limits')}</h2>
      <div className="schema-form">
        <Field label={t('builder.concurrencyKey')} error={problems.concurrency_key} className="wide" hint={t('builder.concurrencyKeyHint')}>
          {({ id, describedBy, invalid }) => <input id={id} value={doc.concurrency_key ?? ''} spellCheck={false} onChange={(e) => update({ ...doc, concurrency_key: e.target.value === '' ? null : e.target.value })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
        </Field>
        <Field label={t('builder.concurrencyLimit')} error={problems.concurrency_limit} hint={t('builder.concurrencyLimitHint')}>
          {({ id, describedBy, invalid }) => <input id={id} type="number" min={1} value={doc.concurrency_limit ?? ''} onChange={(e) => update({ ...doc, concurrency_limit: numberOrNull(e.target.value) })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
        </Field>
        <Field label={t('builder.rateLimit')} error={problems.rate_limit ?? problems['rate_limit.limit']}>
          {({ id, describedBy, invalid }) => <input id={id} type="number" min={1} value={rate?.limit ?? ''} onChange={(e) => (e.target.value === '' ? setRate(null) : setRate({ limit: Number(e.target.value) }))} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
        </Field>
        {rate && (
          <>
            <Field label={t('builder.rateInterval')} error={problems['rate_limit.interval_seconds']}>
              {({ id, describedBy, invalid }) => <input id={id} type="number" min={1} value={rate.interval_seconds} onChange={(e) => setRate({ interval_seconds: Number(e.target.value) })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
            </Field>
            <Field label={t('builder.ratePer')} error={problems['rate_limit.per']}>
              {({ id, describedBy, invalid }) => (
                <select id={id} value={rate.per ?? 'job'} onChange={(e) => setRate({ per: e.target.value as 'job' | 'key' })} aria-describedby={describedBy} aria-invalid={invalid || undefined}>
                  <option value="job">{t('builder.ratePerJob')}</option>
                  <option value="key">{t('builder.ratePerKey')}</option>
                </select>
              )}
            </Field>
          </>
        )}
      </div>
    </section>
  );
}

function newSchedule(type: string): Schedule | null {
  switch (type) {
    case 'cron': return { type: 'cron', expression: '0 0 8 * * ?', timezone: BROWSER_ZONE };
    case 'fixed_rate': return { type: 'fixed_rate', interval_seconds: 300 };
    case 'fixed_delay': return { type: 'fixed_delay', delay_seconds: 60 };
    case 'once': return { type: 'once', at: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z') };
    default: return null;
  }
}

/** Problems keyed by their JSON path (`steps[1].config.url`), as the server reports them. */
type ProblemMap = Record<string, string>;

function clientProblems(doc: Doc, types: StepTypeSchema[]): ProblemMap {
  const out: ProblemMap = {};
  if (!doc.name?.trim()) out.name = 'is required';
  const seen = new Map<string, number>();
  doc.steps.forEach((s, i) => {
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(s.id)) out[`steps[${i}].id`] = "must be 1-64 characters: a letter or '_', then letters, digits, '_' or '-'";
    else if (seen.has(s.id)) out[`steps[${i}].id`] = `duplicate step id '${s.id}' (also used by steps[${seen.get(s.id)}])`;
    seen.set(s.id, i);
    const schema = types.find((x) => x.type === s.type)?.config_schema;
    if (!schema) return;
    // The same schema the server validates with; its semantic checks (templates, module refs) come on save.
    // (through JSON: what is sent is what is checked; a property set to undefined is no property)
    const r = new Validator(schema as any, '2019-09', false).validate(JSON.parse(JSON.stringify(s.config ?? {})));
    for (const e of r.errors) {
      if (e.keyword === 'properties' || e.keyword === 'allOf' || e.keyword === 'if') continue;
      const m = /^#\/?(.*)$/.exec(e.instanceLocation);
      let prop = (m?.[1] ?? '').split('/')[0];
      let msg = e.error;
      if (e.keyword === 'required') {
        const missing = /"([^"]+)"/.exec(e.error)?.[1];
        if (missing) {
          prop = missing;
          msg = 'is required';
        }
      }
      const key = prop ? `steps[${i}].config.${prop}` : `steps[${i}].config`;
      out[key] ??= msg;
    }
  });
  if (doc.schedule?.type === 'cron' && !doc.schedule.expression.trim()) out['schedule.expression'] = 'is required';
  return out;
}

function under(problems: ProblemMap, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(problems)) if (k.startsWith(`${prefix}.`)) out[k.slice(prefix.length + 1).split(/[.[]/)[0]] ??= v;
  return out;
}

function StepCard({
  step, index, count, types, problems, earlierIds, variables, onChange, onMove, onRemove, dnd, canEdit,
}: {
  step: Step; index: number; count: number; types: StepTypeSchema[]; problems: ProblemMap; earlierIds: string[]; variables: string[];
  onChange: (s: Step) => void; onMove: (from: number, to: number) => void; onRemove: () => void;
  dnd: { dragging: number | null; setDragging: (i: number | null) => void }; canEdit: boolean;
}) {
  const { t } = useI18n();
  const [over, setOver] = useState(false);
  const def = types.find((x) => x.type === step.type);
  const prefix = `steps[${index}]`;
  const configErrors = under(problems, `${prefix}.config`);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const from = Number(e.dataTransfer.getData('text/x-step-index'));
    if (!Number.isNaN(from) && from !== index) onMove(from, index);
    dnd.setDragging(null);
  };
  return (
    <li
      className={`step-card card ${over ? 'drop-target' : ''} ${dnd.dragging === index ? 'dragging' : ''}`}
      data-step-index={index}
      data-step-id={step.id}
      onDragOver={(e) => {
        if (dnd.dragging === null) return;
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
      aria-label={t('builder.stepN', { n: index + 1, id: step.id })}
    >
      <div className="step-head">
        <span
          className="handle"
          draggable={canEdit}
          onDragStart={(e) => {
            e.dataTransfer.setData('text/x-step-index', String(index));
            e.dataTransfer.effectAllowed = 'move';
            dnd.setDragging(index);
          }}
          onDragEnd={() => dnd.setDragging(null)}
          title={t('builder.drag')}
          aria-hidden="true"
          data-testid={`drag-${step.id}`}
        >
          ⠿
        </span>
        <strong>{index + 1}.</strong> <span className="chip">{step.type}</span> <code>{step.id}</code>
        <span className="muted small">{def?.title}</span>
        <span className="spacer" />
        <button type="button" onClick={() => onMove(index, index - 1)} disabled={index === 0} aria-label={t('builder.moveUp', { id: step.id })}>↑</button>
        <button type="button" onClick={() => onMove(index, index + 1)} disabled={index === count - 1} aria-label={t('builder.moveDown', { id: step.id })}>↓</button>
        <button type="button" className="danger" onClick={onRemove} aria-label={t('builder.removeStep', { id: step.id })}>✕</button>
      </div>
      <div className="schema-form">
        <Field label={`${t('builder.stepId')} *`} error={problems[`${prefix}.id`]}>
          {({ id, describedBy, invalid }) => (
            <input id={id} value={step.id} onChange={(e) => onChange({ ...step, id: e.target.value })} aria-describedby={describedBy} aria-invalid={invalid || undefined} spellCheck={false} />
          )}
        </Field>
        <Field label={t('builder.stepName')} error={problems[`${prefix}.name`]}>
          {({ id, describedBy, invalid }) => (
            <input id={id} value={step.name ?? ''} onChange={(e) => onChange({ ...step, name: e.target.value })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />
          )}
        </Field>
        <Field label={t('builder.stepTimeout')} error={problems[`${prefix}.timeout_seconds`]}>
          {({ id, describedBy, invalid }) => (
            <input id={id} type="number" min={1} value={step.timeout_seconds ?? ''} onChange={(e) => onChange({ ...step, timeout_seconds: e.target.value === '' ? undefined : Number(e.target.value) })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />
          )}
        </Field>
        <Field label={t('builder.stepRetries')} error={problems[`${prefix}.max_retries`]}>
          {({ id, describedBy, invalid }) => (
            <input id={id} type="number" min={0} max={10} value={step.max_retries ?? ''} onChange={(e) => onChange({ ...step, max_retries: e.target.value === '' ? undefined : Number(e.target.value) })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />
          )}
        </Field>
      </div>
      {problems[`${prefix}.config`] && <p className="field-error" role="alert">{problems[`${prefix}.config`]}</p>}
      {def && (step.type === 'wasm' ? (
        <WasmStepForm schema={def.config_schema} value={step.config} onChange={(config) => onChange({ ...step, config })} errors={configErrors} stepIds={earlierIds} variables={variables} labelPrefix={prefix} />
      ) : (
        <SchemaForm schema={def.config_schema} value={step.config} onChange={(config) => onChange({ ...step, config })} errors={configErrors} stepIds={earlierIds} variables={variables} labelPrefix={prefix} />
      ))}
    </li>
  );
}

export default function BuilderPage() {
  const params = useParams<{ id?: string }>();
  const editing = params.id;
  const { t } = useI18n();
  const canEdit = useCan('operator');
  const qc = useQueryClient();
  const [, navigate] = useLocation();
  const schemas = useQuery({ queryKey: ['schemas'], queryFn: () => api<{ step_types: StepTypeSchema[] }>('/schemas/job'), staleTime: Infinity });
  const existing = useQuery({ queryKey: ['job', editing], queryFn: () => api<Job>(`/jobs/${editing}`), enabled: Boolean(editing) });
  const [doc, setDoc] = useState<Doc | null>(editing ? null : { name: '', description: '', schedule: null, steps: [], enabled: true });
  const [view, setView] = useState<'form' | 'json'>('form');
  const [jsonText, setJsonText] = useState('');
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [serverProblems, setServerProblems] = useState<Problem[]>([]);
  const [saveError, setSaveError] = useState<ApiError | null>(null);
  const [saving, setSaving] = useState(false);
  const [dragging, setDragging] = useState<number | null>(null);
  const [touched, setTouched] = useState(false);

  useEffect(() => {
    if (existing.data && !doc) setDoc(fromJob(existing.data));
  }, [existing.data, doc]);

  const types = schemas.data?.step_types ?? [];
  const client = useMemo(() => (doc && touched ? clientProblems(doc, types) : {}), [doc, types, touched]);
  const problems: ProblemMap = useMemo(() => {
    const out: ProblemMap = { ...client };
    for (const p of serverProblems) out[p.path] ??= p.message;
    return out;
  }, [client, serverProblems]);
  const debouncedSchedule = useDebounced(doc?.schedule ?? null, 400);

  if (!canEdit) return <p className="alert" role="alert">{t('builder.needsOperator')}</p>;
  if (schemas.isLoading || (editing && !doc)) return <Loading />;
  if (schemas.error || existing.error) return <ErrorNote error={schemas.error ?? existing.error} />;
  if (!doc) return <Loading />;

  const update = (d: Doc) => {
    setDoc(d);
    setTouched(true);
    // The server's verdict was about the previous document.
    setServerProblems([]);
    setSaveError(null);
  };
  const setStep = (i: number, s: Step) => update({ ...doc, steps: doc.steps.map((x, j) => (j === i ? s : x)) });
  const move = (from: number, to: number) => {
    if (to < 0 || to >= doc.steps.length) return;
    const steps = [...doc.steps];
    const [s] = steps.splice(from, 1);
    steps.splice(to, 0, s);
    update({ ...doc, steps });
  };
  const addStep = (type: string) => {
    let n = doc.steps.length + 1;
    while (doc.steps.some((s) => s.id === `${type}_${n}`)) n++;
    const id = `${type}_${n}`;
    update({ ...doc, steps: [...doc.steps, { id, name: id, type, config: {} }] });
  };
  const variables = Object.keys(doc.variables ?? {});
  const showJson = () => {
    setJsonText(JSON.stringify(doc, null, 2));
    setJsonError(null);
    setView('json');
  };

  async function save() {
    if (!doc) return;
    setTouched(true);
    setSaving(true);
    setSaveError(null);
    setServerProblems([]);
    try {
      const body = { ...doc, steps: doc.steps.map((s) => ({ ...s, name: s.name?.trim() ? s.name : s.id })) };
      const job = editing ? await api<Job>(`/jobs/${editing}`, { method: 'PUT', body }) : await api<Job>('/jobs', { method: 'POST', body });
      qc.invalidateQueries({ queryKey: ['jobs-overview'] });
      qc.setQueryData(['job', job.id], job);
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      if (err instanceof ApiError) {
        setSaveError(err);
        setServerProblems(err.problems);
      } else throw err;
    } finally {
      setSaving(false);
    }
  }

  const problemList = Object.entries(problems);
  return (
    <article aria-labelledby="builder-title">
      <nav className="crumbs" aria-label={t('common.breadcrumb')}>
        <Link href="/jobs">{t('nav.jobs')}</Link> /{editing && <> <Link href={`/jobs/${editing}`}>{existing.data?.name}</Link> /</>}
      </nav>
      <div className="page-head">
        <h1 id="builder-title">{editing ? t('builder.editTitle', { name: existing.data?.name ?? '' }) : t('builder.newTitle')}</h1>
        <div className="actions">
          <div role="tablist" aria-label={t('builder.view')} className="tabs">
            <button type="button" role="tab" aria-selected={view === 'form'} onClick={() => setView('form')} disabled={view === 'json' && jsonError !== null}>{t('builder.form')}</button>
            <button type="button" role="tab" aria-selected={view === 'json'} onClick={showJson}>JSON</button>
          </div>
          <button type="button" className="primary" onClick={save} disabled={saving || (view === 'json' && jsonError !== null)}>{t('common.save')}</button>
        </div>
      </div>

      {saveError && (
        <div className="alert" role="alert" data-testid="save-error">
          <code className="code">{saveError.code}</code> {saveError.problems.length ? t('builder.problems', { n: saveError.problems.length }) : saveError.message}
          {saveError.problems.length > 0 && (
            <ul>{saveError.problems.map((p) => <li key={p.path + p.message}><code>{p.path || '/'}</code>: {p.message}</li>)}</ul>
          )}
        </div>
      )}
      {!saveError && touched && problemList.length > 0 && (
        <p className="muted" data-testid="client-problems">{t('builder.clientProblems', { n: problemList.length })}</p>
      )}

      {view === 'json' ? (
        <section className="card" aria-labelledby="json-title">
          <h2 id="json-title">{t('builder.jsonTitle')}</h2>
          <p className="hint">{t('builder.jsonHint')}</p>
          <label htmlFor="job-json" className="sr-only">{t('builder.jsonTitle')}</label>
          <textarea
            id="job-json"
            rows={28}
            value={jsonText}
            spellCheck={false}
            aria-invalid={jsonError !== null || undefined}
            aria-describedby={jsonError ? 'job-json-err' : undefined}
            onChange={(e) => {
              setJsonText(e.target.value);
              try {
                const parsed = JSON.parse(e.target.value);
                if (!parsed || typeof parsed !== 'object' || !Array.isArray(parsed.steps)) throw new Error(t('builder.jsonShape'));
                setJsonError(null);
                update(parsed as Doc);
              } catch (err) {
                setJsonError((err as Error).message);
              }
            }}
          />
          {jsonError && <p className="field-error" id="job-json-err" role="alert">{jsonError}</p>}
        </section>
      ) : (
        <>
          <section className="card" aria-labelledby="general-title">
            <h2 id="general-title">{t('builder.general')}</h2>
            <div className="schema-form">
              <Field label={`${t('common.name')} *`} error={problems.name}>
                {({ id, describedBy, invalid }) => <input id={id} value={doc.name} onChange={(e) => update({ ...doc, name: e.target.value })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
              </Field>
              <Field label={t('common.description')} error={problems.description} className="wide">
                {({ id, describedBy }) => <input id={id} value={doc.description ?? ''} onChange={(e) => update({ ...doc, description: e.target.value || null })} aria-describedby={describedBy} />}
              </Field>
              <Field label={t('jobs.enabled')}>
                {({ id }) => <input id={id} type="checkbox" checked={doc.enabled ?? true} onChange={(e) => update({ ...doc, enabled: e.target.checked })} />}
              </Field>
              <Field label={t('job.timeout')} error={problems.timeout_seconds} hint={t('builder.default', { v: '3600' })}>
                {({ id, describedBy, invalid }) => <input id={id} type="number" min={1} value={doc.timeout_seconds ?? ''} onChange={(e) => update({ ...doc, timeout_seconds: e.target.value === '' ? undefined : Number(e.target.value) })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
              </Field>
              <Field label={t('job.retries')} error={problems.max_retries} hint={t('builder.default', { v: '3' })}>
                {({ id, describedBy, invalid }) => <input id={id} type="number" min={0} max={10} value={doc.max_retries ?? ''} onChange={(e) => update({ ...doc, max_retries: e.target.value === '' ? undefined : Number(e.target.value) })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
              </Field>
              <Field label={t('job.overlap')}>
                {({ id }) => (
                  <select id={id} value={doc.overlap_policy ?? 'allow'} onChange={(e) => update({ ...doc, overlap_policy: e.target.value })}>
                    {['allow', 'skip', 'queue'].map((o) => <option key={o} value={o}>{o}</option>)}
                  </select>
                )}
              </Field>
              <Field label={t('builder.variables')} error={problems.variables} className="wide" hint={t('builder.variablesHint')}>
                {({ id, describedBy, invalid }) => <JsonField id={id} value={doc.variables} onChange={(v) => update({ ...doc, variables: (v as Record<string, unknown>) ?? {} })} describedBy={describedBy} invalid={invalid} />}
              </Field>
            </div>
          </section>

          <LimitsCard doc={doc} update={update} problems={problems} />

          <section className="card" aria-labelledby="schedule-title">
            <h2 id="schedule-title">{t('jobs.schedule')}</h2>
            <div className="grid2 flat">
              <div className="schema-form">
                <Field label={t('jobs.scheduleType')} error={problems.schedule ?? problems['schedule.type']}>
                  {({ id }) => (
                    <select id={id} value={doc.schedule?.type ?? 'none'} onChange={(e) => update({ ...doc, schedule: newSchedule(e.target.value) })}>
                      {['none', 'cron', 'fixed_rate', 'fixed_delay', 'once'].map((s) => <option key={s} value={s}>{t(`scheduleType.${s}` as MessageKey)}</option>)}
                    </select>
                  )}
                </Field>
                {doc.schedule?.type === 'cron' && (
                  <>
                    <Field label={t('builder.cron')} error={problems['schedule.expression']} hint={t('builder.cronHint')}>
                      {({ id, describedBy, invalid }) => <input id={id} value={doc.schedule?.type === 'cron' ? doc.schedule.expression : ''} spellCheck={false} onChange={(e) => update({ ...doc, schedule: { ...(doc.schedule as any), expression: e.target.value } })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
                    </Field>
                    <Field label={t('builder.timezone')} error={problems['schedule.timezone']}>
                      {({ id, describedBy, invalid }) => <input id={id} value={doc.schedule?.type === 'cron' ? doc.schedule.timezone : ''} onChange={(e) => update({ ...doc, schedule: { ...(doc.schedule as any), timezone: e.target.value } })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
                    </Field>
                  </>
                )}
                {doc.schedule?.type === 'fixed_rate' && (
                  <Field label={t('builder.interval')} error={problems['schedule.interval_seconds']}>
                    {({ id, describedBy, invalid }) => <input id={id} type="number" min={1} value={doc.schedule?.type === 'fixed_rate' ? doc.schedule.interval_seconds : ''} onChange={(e) => update({ ...doc, schedule: { type: 'fixed_rate', interval_seconds: Number(e.target.value) } })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
                  </Field>
                )}
                {doc.schedule?.type === 'fixed_delay' && (
                  <Field label={t('builder.delay')} error={problems['schedule.delay_seconds']}>
                    {({ id, describedBy, invalid }) => <input id={id} type="number" min={1} value={doc.schedule?.type === 'fixed_delay' ? doc.schedule.delay_seconds : ''} onChange={(e) => update({ ...doc, schedule: { type: 'fixed_delay', delay_seconds: Number(e.target.value) } })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
                  </Field>
                )}
                {doc.schedule?.type === 'once' && (
                  <Field label={t('builder.at')} error={problems['schedule.at']} hint="2026-12-31T08:00:00+07:00">
                    {({ id, describedBy, invalid }) => <input id={id} value={doc.schedule?.type === 'once' ? doc.schedule.at : ''} onChange={(e) => update({ ...doc, schedule: { type: 'once', at: e.target.value } })} aria-describedby={describedBy} aria-invalid={invalid || undefined} />}
                  </Field>
                )}
              </div>
              <div>
                <h3>{t('preview.title')}</h3>
                <FirePreview schedule={debouncedSchedule} />
              </div>
            </div>
          </section>

          <section aria-labelledby="steps-title">
            <div className="page-head">
              <h2 id="steps-title">{t('job.steps')}</h2>
              <div className="actions" role="group" aria-label={t('builder.addStep')}>
                {types.map((x) => (
                  <button key={x.type} type="button" onClick={() => addStep(x.type)}>+ {x.type}</button>
                ))}
              </div>
            </div>
            {problems.steps && <p className="field-error" role="alert">{problems.steps}</p>}
            {doc.steps.length === 0 && <p className="empty">{t('builder.noSteps')}</p>}
            <ol className="step-cards">
              {doc.steps.map((s, i) => (
                <StepCard
                  key={`${i}-${s.type}`}
                  step={s}
                  index={i}
                  count={doc.steps.length}
                  types={types}
                  problems={problems}
                  earlierIds={doc.steps.slice(0, i).map((x) => x.id)}
                  variables={variables}
                  onChange={(x) => setStep(i, x)}
                  onMove={move}
                  onRemove={() => update({ ...doc, steps: doc.steps.filter((_, j) => j !== i) })}
                  dnd={{ dragging, setDragging }}
                  canEdit={canEdit}
                />
              ))}
            </ol>
          </section>
        </>
      )}
    </article>
  );
}
