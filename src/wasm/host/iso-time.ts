/**
 * ISO 8601 text of an instant (`Date#toISOString`), made cheaply for the hot paths: a run's host
 * calls come thousands a second, so the text of the current second is kept and only the
 * milliseconds are written per call. Exactly `new Date(ms).toISOString()` for every instant.
 */
export class IsoClock {
  private sec = Number.NaN;
  private head = '';

  /** `new Date(ms).toISOString()`. */
  iso(t: number): string {
    const ms = Math.trunc(t); // as Date keeps it (TimeClip)
    const sec = Math.floor(ms / 1000);
    if (sec !== this.sec) {
      const text = new Date(ms).toISOString();
      // Only the form YYYY-MM-DDTHH:mm:ss.sssZ (four-digit years) is cut at a fixed place.
      if (text.length !== 24) return text;
      this.sec = sec;
      this.head = text.slice(0, 20);
    }
    const m = ms - sec * 1000;
    return `${this.head}${m < 10 ? '00' : m < 100 ? '0' : ''}${m}Z`;
  }
}
