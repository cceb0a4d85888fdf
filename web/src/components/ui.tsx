import { useEffect, useId, useRef, type ReactNode } from 'react';
import { JsonView, allExpanded, collapseAllNested, defaultStyles } from 'react-json-view-lite';
import 'react-json-view-lite/dist/index.css';
import { ApiError } from '../api.ts';
import { useI18n } from '../i18n.tsx';
import type { MessageKey } from '../messages/en.ts';

const STATUS_KEYS = new Set(['queued', 'running', 'succeeded', 'failed', 'dead_lettered', 'cancelled', 'skipped', 'pending', 'never']);

export function StatusBadge({ status }: { status: string | null | undefined }) {
  const { t } = useI18n();
  const s = status ?? 'never';
  return (
    <span className={`badge status-${s}`} data-status={s}>
      {STATUS_KEYS.has(s) ? t(`status.${s}` as MessageKey) : s}
    </span>
  );
}

// The library's default colours fail WCAG AA contrast on a light background; ours pass.
const JSON_STYLE = {
  ...defaultStyles,
  container: 'json-tree',
  label: 'jv-label',
  clickableLabel: 'jv-label jv-click',
  nullValue: 'jv-null',
  undefinedValue: 'jv-null',
  numberValue: 'jv-number',
  stringValue: 'jv-string',
  booleanValue: 'jv-bool',
  otherValue: 'jv-other',
  punctuation: 'jv-punct',
  collapsedContent: 'jv-collapsed',
};

/** A collapsible JSON tree; primitives are shown as plain code. */
export function Json({ value, label, expanded = true }: { value: unknown; label: string; expanded?: boolean }) {
  if (value === null || value === undefined || typeof value !== 'object') {
    return <code className="json-prim" aria-label={label}>{JSON.stringify(value ?? null)}</code>;
  }
  return (
    <div className="json" role="group" aria-label={label}>
      <JsonView data={value as object} shouldExpandNode={expanded ? allExpanded : collapseAllNested} style={JSON_STYLE} />
    </div>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as ApiError;
  return (
    <p className="alert" role="alert">
      {e.code && <code className="code">{e.code}</code>} {e.message ?? String(error)}
    </p>
  );
}

export function Loading() {
  const { t } = useI18n();
  return <p className="muted" aria-live="polite">{t('common.loading')}</p>;
}

export function Pager({ page, limit, total, onPage }: { page: number; limit: number; total: number; onPage: (p: number) => void }) {
  const { t } = useI18n();
  const pages = Math.max(1, Math.ceil(total / limit));
  if (pages <= 1) return null;
  return (
    <nav className="pager" aria-label={t('common.pages')}>
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>{t('common.prev')}</button>
      <span>{t('common.pageOf', { page, pages })}</span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>{t('common.next')}</button>
    </nav>
  );
}

/** A modal confirmation on the native <dialog> (focus trap and Escape come with it). */
export function ConfirmDialog({
  open, title, children, confirmLabel, onConfirm, onClose, danger = true, busy = false,
}: {
  open: boolean; title: string; children: ReactNode; confirmLabel: string; onConfirm: () => void; onClose: () => void; danger?: boolean; busy?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const { t } = useI18n();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="confirm-title" className="dialog">
      <h2 id="confirm-title">{title}</h2>
      <div>{children}</div>
      <div className="actions">
        <button type="button" onClick={onClose}>{t('common.cancel')}</button>
        <button type="button" className={danger ? 'danger' : 'primary'} onClick={onConfirm} disabled={busy}>{confirmLabel}</button>
      </div>
    </dialog>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** A labelled control: the label names only the control (not its options), hint and error tied to it. */
export function Field({
  label, hint, error, children, className,
}: { label: string; hint?: string; error?: string | null; children: (ids: { id: string; describedBy?: string; invalid: boolean }) => ReactNode; className?: string }) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-err` : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, describedBy, invalid: Boolean(error) })}
      {hint && <p className="hint" id={hintId}>{hint}</p>}
      {error && <p className="field-error" id={errId} role="alert">{error}</p>}
    </div>
  );
}
