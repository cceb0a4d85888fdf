import { useRef, useState, type DragEvent, type FormEvent } from 'react';
import { Link } from 'wouter';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError, qs, upload, type Page } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import { useCan } from '../session.tsx';
import { useDebounced } from '../hooks.ts';
import type { WasmModule } from '../types.ts';
import { ConfirmDialog, Empty, ErrorNote, Field, Loading, Pager } from '../components/ui.tsx';
import { downloadFile } from '../components/download.ts';
import { formatBytes, formatDateTime } from '../format.ts';

const LIMIT = 20;

function UploadForm({ onDone }: { onDone: (m: WasmModule) => void }) {
  const { t } = useI18n();
  const [file, setFile] = useState<File | null>(null);
  const [fields, setFields] = useState({ name: '', version: '1.0.0', author: '', description: '', signature: '' });
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const input = useRef<HTMLInputElement>(null);

  const take = (f: File | undefined | null) => {
    if (!f) return;
    setFile(f);
    setError(null);
    if (!fields.name) setFields((x) => ({ ...x, name: f.name.replace(/\.wasm$/i, '').replace(/[^A-Za-z0-9._-]/g, '-') }));
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    take(e.dataTransfer.files[0]);
  };
  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!file) return;
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) if (v.trim()) form.set(k, v.trim());
    form.set('file', file, file.name);
    setProgress(0);
    setError(null);
    try {
      const m = await upload<WasmModule>('/wasm/modules', form, setProgress);
      setFile(null);
      setFields({ name: '', version: '1.0.0', author: fields.author, description: '', signature: '' });
      onDone(m);
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setProgress(null);
    }
  }
  const problem = (k: string) => error?.problems.find((p) => p.path === k)?.message;
  const set = (k: keyof typeof fields) => (e: { target: { value: string } }) => setFields({ ...fields, [k]: e.target.value });
  return (
    <form className="card upload" onSubmit={submit} aria-labelledby="upload-title">
      <h2 id="upload-title">{t('modules.upload')}</h2>
      <div
        className={`dropzone ${over ? 'over' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={onDrop}
      >
        {file ? (
          <p><strong>{file.name}</strong> · {formatBytes(file.size, 'en')}</p>
        ) : (
          <p>{t('modules.dropHere')}</p>
        )}
        <button type="button" onClick={() => input.current?.click()}>{t('modules.chooseFile')}</button>
        <input ref={input} type="file" accept=".wasm,application/wasm" hidden onChange={(e) => take(e.target.files?.[0])} aria-label={t('modules.chooseFile')} />
      </div>
      <div className="schema-form">
        <Field label={`${t('common.name')} *`} error={problem('name')}>{({ id }) => <input id={id} value={fields.name} onChange={set('name')} required />}</Field>
        <Field label={`${t('module.version')} *`} error={problem('version')}>{({ id }) => <input id={id} value={fields.version} onChange={set('version')} required />}</Field>
        <Field label={`${t('module.author')} *`} error={problem('author')}>{({ id }) => <input id={id} value={fields.author} onChange={set('author')} required />}</Field>
        <Field label={t('common.description')} className="wide">{({ id }) => <input id={id} value={fields.description} onChange={set('description')} />}</Field>
        <Field label={t('module.signature')} hint={t('modules.signatureHint')} className="wide" error={problem('signature')}>
          {({ id, describedBy }) => <input id={id} value={fields.signature} onChange={set('signature')} aria-describedby={describedBy} spellCheck={false} />}
        </Field>
      </div>
      {progress !== null && (
        <div className="progress">
          <label htmlFor="upload-progress">{t('modules.uploading')}</label>
          <progress id="upload-progress" max={1} value={progress} />
        </div>
      )}
      {error && <ErrorNote error={error} />}
      <button type="submit" className="primary" disabled={!file || progress !== null}>{t('modules.uploadButton')}</button>
    </form>
  );
}

export default function ModulesPage() {
  const { t, locale } = useI18n();
  const canOperate = useCan('operator');
  const qc = useQueryClient();
  const [search, setSearch] = useState('');
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string | null>(null);
  const [target, setTarget] = useState<WasmModule | null>(null);
  const q = useDebounced(search);
  const params = { page, limit: LIMIT, search: q };
  const list = useQuery({ queryKey: ['modules', params], queryFn: () => api<Page<WasmModule>>(`/wasm/modules${qs(params)}`), placeholderData: (p) => p });
  const usage = useQuery({
    queryKey: ['module', target?.id],
    queryFn: () => api<WasmModule & { used_by: { id: string; name: string; steps: string[] }[] }>(`/wasm/modules/${target!.id}`),
    enabled: target !== null,
  });
  const remove = useMutation({
    mutationFn: (m: WasmModule) => api(`/wasm/modules/${m.id}`, { method: 'DELETE' }),
    onSuccess: (_r, m) => {
      setNotice(t('modules.deleted', { ref: `${m.name}@${m.version}` }));
      setTarget(null);
      qc.invalidateQueries({ queryKey: ['modules'] });
    },
  });
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const usedBy = usage.data?.used_by ?? [];

  return (
    <section aria-labelledby="modules-title">
      <div className="page-head">
        <h1 id="modules-title">{t('modules.title')}</h1>
      </div>
      {canOperate && (
        <UploadForm
          onDone={(m) => {
            setNotice(t('modules.uploaded', { ref: `${m.name}@${m.version}` }));
            qc.invalidateQueries({ queryKey: ['modules'] });
          }}
        />
      )}
      {notice && <p className="notice" role="status">{notice}</p>}
      <div className="filters" role="search">
        <Field label={t('common.search')}>{({ id }) => <input id={id} type="search" value={search} onChange={(e) => { setSearch(e.target.value); setPage(1); }} placeholder={t('modules.searchPlaceholder')} />}</Field>
      </div>
      <ErrorNote error={list.error ?? downloadError} />
      {list.isLoading ? <Loading /> : list.data && list.data.items.length ? (
        <div className="table-wrap">
          <table className="table" data-testid="modules">
            <caption className="sr-only">{t('modules.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('common.name')}</th>
                <th scope="col">{t('module.version')}</th>
                <th scope="col">{t('module.author')}</th>
                <th scope="col">{t('module.size')}</th>
                <th scope="col">{t('module.signature')}</th>
                <th scope="col">{t('common.created')}</th>
                <th scope="col"><span className="sr-only">{t('common.actions')}</span></th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((m) => (
                <tr key={m.id} data-module={`${m.name}@${m.version}`}>
                  <td><Link href={`/modules/${m.id}`} className="strong">{m.name}</Link>{m.description && <div className="muted small clamp">{m.description}</div>}</td>
                  <td><code>{m.version}</code></td>
                  <td>{m.author}</td>
                  <td>{formatBytes(Number(m.size_bytes), locale)}</td>
                  <td>{m.signed ? t('module.signedBy', { key: m.signed_by_key ?? '' }) : <span className="muted">{t('module.unsigned')}</span>}</td>
                  <td>{formatDateTime(m.created_at, locale)}</td>
                  <td className="right actions">
                    <button type="button" onClick={() => downloadFile(`/wasm/modules/${m.id}/download`, `${m.name}-${m.version}.wasm`).catch(setDownloadError)} aria-label={t('modules.downloadLabel', { ref: `${m.name}@${m.version}` })}>
                      {t('modules.download')}
                    </button>
                    {canOperate && (
                      <button type="button" className="danger" onClick={() => { remove.reset(); setTarget(m); }} aria-label={t('modules.deleteLabel', { ref: `${m.name}@${m.version}` })}>
                        {t('common.delete')}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : <Empty>{t('modules.empty')}</Empty>}
      {list.data && <Pager page={page} limit={LIMIT} total={list.data.total} onPage={setPage} />}
      <ConfirmDialog
        open={target !== null}
        title={t('modules.deleteTitle', { ref: target ? `${target.name}@${target.version}` : '' })}
        confirmLabel={t('common.delete')}
        onConfirm={() => target && remove.mutate(target)}
        onClose={() => setTarget(null)}
        busy={remove.isPending || usage.isLoading || usedBy.length > 0}
      >
        {usage.isLoading ? <p>{t('common.loading')}</p> : usedBy.length > 0 ? (
          <div data-testid="used-by">
            <p>{t('modules.inUse', { n: usedBy.length })}</p>
            <ul>{usedBy.map((j) => <li key={j.id}><Link href={`/jobs/${j.id}`}>{j.name}</Link> ({j.steps.join(', ')})</li>)}</ul>
          </div>
        ) : (
          <p>{t('modules.deleteText')}</p>
        )}
        <ErrorNote error={remove.error} />
      </ConfirmDialog>
    </section>
  );
}
