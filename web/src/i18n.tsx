import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { en, type MessageKey } from './messages/en.ts';
import { vi } from './messages/vi.ts';

export type Lang = 'en' | 'vi';
export const LANGS: Record<Lang, { label: string; messages: Record<MessageKey, string> }> = {
  en: { label: 'English', messages: en },
  vi: { label: 'Tiếng Việt', messages: vi },
};
const LANG_KEY = 'vecron.lang';

/** The saved choice, else the browser's first language we have, else English. */
function initialLang(): Lang {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === 'en' || saved === 'vi') return saved;
  for (const l of navigator.languages ?? [navigator.language]) {
    const base = l.toLowerCase().split('-')[0];
    if (base === 'vi' || base === 'en') return base;
  }
  return 'en';
}

interface I18n {
  lang: Lang;
  /** BCP 47 locale for dates and numbers: the browser's own when it speaks the chosen language. */
  locale: string;
  setLang(l: Lang): void;
  t(key: MessageKey, vars?: Record<string, string | number>): string;
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem(LANG_KEY, l);
    setLangState(l);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const locale = useMemo(() => {
    const browser = (navigator.languages ?? [navigator.language]).find((l) => l.toLowerCase().startsWith(lang));
    return browser ?? (lang === 'vi' ? 'vi-VN' : 'en-US');
  }, [lang]);
  const t = useCallback(
    (key: MessageKey, vars?: Record<string, string | number>) => {
      let s = LANGS[lang].messages[key] ?? en[key] ?? key;
      if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
      return s;
    },
    [lang],
  );
  const value = useMemo(() => ({ lang, locale, setLang, t }), [lang, locale, setLang, t]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(I18nContext);
  if (!v) throw new Error('useI18n outside I18nProvider');
  return v;
}
