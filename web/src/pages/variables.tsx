import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { ConfirmDialog, Empty, ErrorNote, Field, Loading } from '../components/ui.tsx';
import { formatDateTime } from '../format.ts';

interface Variable {
  name: string;
  value: unknown;
  secret: boolean;
  description: string | null;
  updated_at: string;
  updated_by?: string | null;
}

/** Global variables and secrets. A secret's value is write-only: the API answers `***`, and so do we. */
export default function VariablesPage() {
  const { t, locale } = useI18n();
  const canEdit = useCan('operator');
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ['variables'], queryFn: () => api<{ items: Variable[] }>('/variables') });
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [asJson, setAsJson] = useState(false);
  const [secret, setSecret] = useState(false);
  const [description, setDescription] = useState('');
  const [target, setTarget] = useState<Variable | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: () => {
      let v: unknown = value;
      if (asJson && !secret) {
        try {
          v = JSON.parse(value);
        } catch (err) {
          throw new ApiError(400, 'invalid_json', `${t('builder.badJson')} ${(err as Error).message}`, [{ path: 'value', message: t('builder.badJson') }]);
        }
      }
      return api<Variable>(`/variables/${encodeURIComponent(name.trim())}`, { method: 'PUT', body: { value: v, secret, description: description.trim() || null } });
    },
    onSuccess: (v) => {
      setNotice(t('vars.saved', { name: v.name }));
      // The secret's value leaves the form as soon as it is saved.
      setName('');
      setValue('');
      setDescription('');
      setSecret(false);
      qc.invalidateQueries({ queryKey: ['variables'] });
    },
  });
  const remove = useMutation({
    mutationFn: (v: Variable) => api(`/variables/${encodeURIComponent(v.name)}`, { method: 'DELETE' }),
    onSuccess: () => {
      setTarget(null);
      qc.invalidateQueries({ queryKey: ['variables'] });
    },
  });
  const problems = (save.error as ApiError | null)?.problems ?? [];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    save.mutate();
  };
  const edit = (v: Variable) => {
    setName(v.name);
    setSecret(v.secret);
    setDescription(v.description ?? '');
    setAsJson(!v.secret && typeof v.value !== 'string');
    setValue(v.secret ? '' : typeof v.value === 'string' ? v.value : JSON.stringify(v.value));
  };
  return (
    <section aria-labelledby="vars-title">
      <h1 id="vars-title">{t('vars.title')}</h1>
      <p className="muted">{t('vars.intro')}</p>
      {canEdit && (
        <form className="card" onSubmit={submit} aria-labelledby="vars-form-title">
          <h2 id="vars-form-title">{t('vars.set')}</h2>
          <div className="schema-form">
            <Field label={`${t('common.name')} *`} error={problems.find((p) => p.path === 'name')?.message}>
              {({ id }) => <input id={id} value={name} onChange={(e) => setName(e.target.value)} required spellCheck={false} />}
            </Field>
            <Field label={`${t('vars.value')} *`} error={problems.find((p) => p.path === 'value')?.message} hint={secret ? t('vars.secretHint') : undefined}>
              {({ id, describedBy }) => <input id={id} type={secret ? 'password' : 'text'} autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} required aria-describedby={describedBy} />}
            </Field>
            <Field label={t('vars.secret')}>{({ id }) => <input id={id} type="checkbox" checked={secret} onChange={(e) => setSecret(e.target.checked)} />}</Field>
            {!secret && <Field label={t('vars.json')}>{({ id }) => <input id={id} type="checkbox" checked={asJson} onChange={(e) => setAsJson(e.target.checked)} />}</Field>}
            <Field label={t('common.description')} className="wide">{({ id }) => <input id={id} value={description} onChange={(e) => setDescription(e.target.value)} />}</Field>
          </div>
          <button type="submit" className="primary" disabled={save.isPending}>{t('common.save')}</button>
          <ErrorNote error={save.error} />
        </form>
      )}
      {notice && <p className="notice" role="status">{notice}</p>}
      <ErrorNote error={list.error ?? remove.error} />
      {list.isLoading ? <Loading /> : list.data && list.data.items.length ? (
        <div className="table-wrap">
          <table className="table" data-testid="variables">
            <caption className="sr-only">{t('vars.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('common.name')}</th><th scope="col">{t('vars.value')}</th><th scope="col">{t('common.description')}</th>
                <th scope="col">{t('vars.updated')}</th>{canEdit && <th scope="col"><span className="sr-only">{t('common.actions')}</span></th>}
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((v) => (
                <tr key={v.name} data-variable={v.name}>
                  <td><code>{v.name}</code> {v.secret && <span className="chip">{t('vars.secretChip')}</span>}</td>
                  <td className="value">{v.secret ? <span className="muted" aria-label={t('vars.hidden')}>••••••</span> : <code className="break">{JSON.stringify(v.value)}</code>}</td>
                  <td>{v.description ?? ''}</td>
                  <td>{formatDateTime(v.updated_at, locale)} {v.updated_by && <span className="muted small">· {v.updated_by}</span>}</td>
                  {canEdit && (
                    <td className="right actions">
                      <button type="button" onClick={() => edit(v)} aria-label={t('vars.editLabel', { name: v.name })}>{t('job.edit')}</button>
                      <button type="button" className="danger" onClick={() => setTarget(v)} aria-label={t('vars.deleteLabel', { name: v.name })}>{t('common.delete')}</button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : <Empty>{t('vars.empty')}</Empty>}
      <ConfirmDialog open={target !== null} title={t('vars.deleteTitle', { name: target?.name ?? '' })} confirmLabel={t('common.delete')} onConfirm={() => target && remove.mutate(target)} onClose={() => setTarget(null)} busy={remove.isPending}>
        <p>{t('vars.deleteText')}</p>
      </ConfirmDialog>
    </section>
  );
}
