import { useQuery } from '@tanstack/react-query';
import { api, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import type { WasmModule } from '../types.ts';
import { Field } from './ui.tsx';
import { SchemaForm } from './schema-form.tsx';

/**
 * The WASM step form as the design study draws it: module@version picker, function picker from the
 * module's exports, fuel / timeout / memory limits (from the schema), and the module's permissions.
 */
export function WasmStepForm({
  schema, value, onChange, errors, stepIds, variables, labelPrefix,
}: {
  schema: Record<string, any>;
  value: Record<string, any>;
  onChange: (v: Record<string, any>) => void;
  errors: Record<string, string>;
  stepIds: string[];
  variables: string[];
  labelPrefix: string;
}) {
  const { t } = useI18n();
  const modules = useQuery({ queryKey: ['modules', 'all'], queryFn: () => api<Page<WasmModule>>('/wasm/modules?limit=200') });
  const ref: string = value.module_id ?? '';
  const details = useQuery({
    queryKey: ['module', ref],
    queryFn: () => api<WasmModule>(`/wasm/modules/${encodeURIComponent(ref)}`),
    enabled: ref !== '' && !ref.includes('{{'),
    retry: false,
  });
  const refs = new Set<string>();
  for (const m of modules.data?.items ?? []) {
    refs.add(`${m.name}@${m.version}`);
    refs.add(`${m.name}@latest`);
  }
  const entries: string[] = (details.data?.entries ?? []).map((e: { name: string }) => e.name);
  const exportsList: { name: string; kind: string; params?: string[]; results?: string[] }[] = details.data?.exports ?? [];
  const set = (k: string, v: unknown) => {
    const next = { ...value };
    if (v === '' || v === undefined) delete next[k];
    else next[k] = v;
    onChange(next);
  };
  return (
    <div className="wasm-step">
      <div className="schema-form">
        <Field label={`${t('builder.module')} *`} error={errors.module_id ?? (details.error ? (details.error as Error).message : undefined)} hint={t('builder.moduleHint')}>
          {({ id, describedBy, invalid }) => (
            <select id={id} value={ref} onChange={(e) => {
              const { function_name: _dropped, ...rest } = value;
              onChange({ ...rest, module_id: e.target.value });
            }} aria-describedby={describedBy} aria-invalid={invalid || undefined}>
              <option value="">{t('builder.choose')}</option>
              {ref && !refs.has(ref) && <option value={ref}>{ref}</option>}
              {[...refs].sort().map((r) => <option key={r} value={r}>{r}</option>)}
            </select>
          )}
        </Field>
        <Field label={`${t('builder.function')} *`} error={errors.function_name} hint={entries.length ? undefined : t('builder.functionHint')}>
          {({ id, describedBy, invalid }) => (
            <select id={id} value={value.function_name ?? ''} onChange={(e) => set('function_name', e.target.value)} disabled={!details.data} aria-describedby={describedBy} aria-invalid={invalid || undefined}>
              <option value="">{t('builder.choose')}</option>
              {value.function_name && !entries.includes(value.function_name) && <option value={value.function_name}>{value.function_name}</option>}
              {entries.map((f) => {
                const sig = exportsList.find((x) => x.name === f);
                return <option key={f} value={f}>{f}{sig?.params ? `(${sig.params.join(', ')}) → ${(sig.results ?? []).join(', ')}` : ''}</option>;
              })}
            </select>
          )}
        </Field>
      </div>
      <SchemaForm
        schema={schema}
        value={value}
        onChange={onChange}
        errors={errors}
        stepIds={stepIds}
        variables={variables}
        skip={['module_id', 'function_name']}
        labelPrefix={labelPrefix}
      />
      {details.data && (
        <div className="perms" data-testid="wasm-permissions">
          <strong>{t('builder.permissions')}</strong>{' '}
          {(details.data.permissions ?? []).length === 0 ? (
            <span className="muted">{t('module.noPermissions')}</span>
          ) : (
            (details.data.permissions as { type: string; resource_pattern: string | null }[]).map((p, i) => (
              <span key={i} className="chip"><code>{p.type}</code> {p.resource_pattern ?? '*'}</span>
            ))
          )}
        </div>
      )}
    </div>
  );
}
