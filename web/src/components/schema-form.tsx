import { useEffect, useState } from 'react';
import { useI18n } from '../i18n.tsx';
import { Field } from './ui.tsx';
import { TemplateInput } from './template-input.tsx';

type Schema = Record<string, any>;
const MULTILINE = new Set(['query', 'body_text', 'filter']);

/** The type a property's schema asks for, for choosing a control. */
function kindOf(s: Schema): 'enum' | 'string' | 'number' | 'boolean' | 'json' {
  if (Array.isArray(s.enum)) return 'enum';
  const t = Array.isArray(s.type) ? s.type.filter((x: string) => x !== 'null')[0] : s.type;
  if (t === 'string') return 'string';
  if (t === 'integer' || t === 'number') return 'number';
  if (t === 'boolean') return 'boolean';
  return 'json';
}

/** A JSON-valued property (objects, lists, any): edited as JSON text, parsed as it is typed. */
export function JsonField({ id, value, onChange, describedBy, invalid, rows = 3 }: {
  id: string; value: unknown; onChange: (v: unknown) => void; describedBy?: string; invalid?: boolean; rows?: number;
}) {
  const { t } = useI18n();
  const shown = value === undefined ? '' : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [bad, setBad] = useState(false);
  // Follow changes made elsewhere (the JSON view), unless the text here is mid-edit and unparsable.
  useEffect(() => {
    if (!bad) setText(shown);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shown]);
  return (
    <>
      <textarea
        id={id}
        rows={rows}
        value={text}
        spellCheck={false}
        aria-describedby={describedBy}
        aria-invalid={invalid || bad || undefined}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === '') {
            setBad(false);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(e.target.value));
            setBad(false);
          } catch {
            setBad(true);
          }
        }}
      />
      {bad && <p className="field-error">{t('builder.badJson')}</p>}
    </>
  );
}

/**
 * A form generated from a step type's config schema (GET /api/v1/schemas/job): one control per
 * property. `errors` maps a property name to its message (client-side ajv or the server's problems).
 */
export function SchemaForm({
  schema, value, onChange, errors, stepIds, variables, skip = [], labelPrefix,
}: {
  schema: Schema;
  value: Record<string, any>;
  onChange: (v: Record<string, any>) => void;
  errors: Record<string, string>;
  stepIds: string[];
  variables: string[];
  skip?: string[];
  labelPrefix: string;
}) {
  const { t } = useI18n();
  const required = new Set<string>(schema.required ?? []);
  const set = (k: string, v: unknown) => {
    const next = { ...value };
    if (v === undefined || v === '') delete next[k];
    else next[k] = v;
    onChange(next);
  };
  return (
    <div className="schema-form">
      {Object.entries(schema.properties ?? {}).filter(([k]) => !skip.includes(k)).map(([k, s]: [string, any]) => {
        const kind = kindOf(s);
        const label = `${k}${required.has(k) ? ' *' : ''}`;
        const hint = s.description ?? (s.default !== undefined ? t('builder.default', { v: JSON.stringify(s.default) }) : undefined);
        return (
          <Field key={k} label={label} hint={hint} error={errors[k]} className={kind === 'json' || MULTILINE.has(k) ? 'wide' : ''}>
            {({ id, describedBy, invalid }) => {
              const aria = { 'aria-describedby': describedBy, 'aria-invalid': invalid || undefined, 'data-field': `${labelPrefix}.${k}` };
              switch (kind) {
                case 'enum':
                  return (
                    <select id={id} value={value[k] ?? ''} onChange={(e) => set(k, e.target.value || undefined)} {...aria}>
                      {!required.has(k) && <option value="">{s.default !== undefined ? `— (${s.default})` : '—'}</option>}
                      {required.has(k) && value[k] === undefined && <option value="">{t('builder.choose')}</option>}
                      {s.enum.map((o: string) => <option key={o} value={o}>{o}</option>)}
                    </select>
                  );
                case 'number':
                  return (
                    <input
                      id={id}
                      type="number"
                      value={value[k] ?? ''}
                      placeholder={s.default !== undefined ? String(s.default) : undefined}
                      min={s.minimum}
                      max={s.maximum}
                      step={s.type === 'integer' ? 1 : 'any'}
                      onChange={(e) => set(k, e.target.value === '' ? undefined : Number(e.target.value))}
                      {...aria}
                    />
                  );
                case 'boolean':
                  return (
                    <input id={id} type="checkbox" checked={value[k] ?? s.default ?? false} onChange={(e) => set(k, e.target.checked)} {...aria} />
                  );
                case 'string':
                  return (
                    <TemplateInput
                      id={id}
                      value={value[k] ?? ''}
                      onChange={(v) => set(k, v)}
                      stepIds={stepIds}
                      variables={variables}
                      multiline={MULTILINE.has(k)}
                      placeholder={s.default !== undefined ? String(s.default) : undefined}
                      describedBy={describedBy}
                      invalid={invalid}
                      required={required.has(k)}
                    />
                  );
                default:
                  return <JsonField id={id} value={value[k]} onChange={(v) => set(k, v)} describedBy={describedBy} invalid={invalid} />;
              }
            }}
          </Field>
        );
      })}
    </div>
  );
}
