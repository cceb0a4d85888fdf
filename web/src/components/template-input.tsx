import { useId, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { useI18n } from '../i18n.tsx';

/**
 * A text field that completes templates: after `{{steps.` it offers the ids of the earlier steps
 * (then `.output`), after `{{variables.` the job's variable names. A combobox in the ARIA sense:
 * arrow keys move, Enter or Tab takes the choice, Escape closes.
 */
export function TemplateInput({
  id, value, onChange, stepIds, variables, multiline = false, placeholder, describedBy, invalid, required,
}: {
  id: string;
  value: string;
  onChange: (v: string) => void;
  stepIds: string[];
  variables: string[];
  multiline?: boolean;
  placeholder?: string;
  describedBy?: string;
  invalid?: boolean;
  required?: boolean;
}) {
  const { t } = useI18n();
  const listId = useId();
  const ref = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const [caret, setCaret] = useState<number | null>(null);
  const [active, setActive] = useState(0);
  const [closed, setClosed] = useState(false);

  const suggestion = useMemo(() => {
    if (caret === null) return null;
    const before = value.slice(0, caret);
    const m = /\{\{\s*(steps|variables)\.([A-Za-z0-9_-]*)$/.exec(before);
    if (!m) return null;
    const pool = m[1] === 'steps' ? stepIds : variables;
    const options = pool.filter((x) => x.startsWith(m[2]));
    return options.length ? { kind: m[1], partial: m[2], options } : null;
  }, [value, caret, stepIds, variables]);
  const open = suggestion !== null && !closed;

  function choose(option: string) {
    if (!suggestion || caret === null) return;
    const start = caret - suggestion.partial.length;
    const insert = suggestion.kind === 'steps' ? `${option}.output}}` : `${option}}}`;
    const rest = value.slice(caret).replace(/^[A-Za-z0-9_-]*(\.output)?\}\}/, '');
    const next = value.slice(0, start) + insert + rest;
    onChange(next);
    const pos = start + insert.length;
    requestAnimationFrame(() => {
      ref.current?.setSelectionRange(pos, pos);
      setCaret(pos);
    });
  }

  function onKeyDown(e: KeyboardEvent) {
    if (!open || !suggestion) return;
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => (a + 1) % suggestion.options.length);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => (a - 1 + suggestion.options.length) % suggestion.options.length);
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      choose(suggestion.options[Math.min(active, suggestion.options.length - 1)]);
    } else if (e.key === 'Escape') {
      setClosed(true);
    }
  }

  const common = {
    id,
    ref,
    value,
    placeholder,
    required,
    spellCheck: false,
    role: 'combobox',
    'aria-autocomplete': 'list' as const,
    'aria-expanded': open,
    'aria-controls': listId,
    'aria-describedby': describedBy,
    'aria-invalid': invalid || undefined,
    'aria-activedescendant': open ? `${listId}-${active}` : undefined,
    onKeyDown,
    onChange: (e: { target: { value: string; selectionStart: number | null } }) => {
      onChange(e.target.value);
      setCaret(e.target.selectionStart);
      setClosed(false);
      setActive(0);
    },
    onSelect: (e: { currentTarget: { selectionStart: number | null } }) => setCaret(e.currentTarget.selectionStart),
    onBlur: () => setTimeout(() => setClosed(true), 150),
    onFocus: () => setClosed(false),
  };
  return (
    <div className="template-input">
      {multiline ? <textarea rows={4} {...common} /> : <input type="text" {...common} />}
      <ul id={listId} role="listbox" className="suggestions" hidden={!open} aria-label={t('builder.suggestions')}>
        {open && suggestion!.options.map((o, i) => (
          <li
            key={o}
            id={`${listId}-${i}`}
            role="option"
            aria-selected={i === active}
            onMouseDown={(e) => {
              e.preventDefault();
              choose(o);
            }}
          >
            <code>{suggestion!.kind === 'steps' ? `steps.${o}.output` : `variables.${o}`}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}
