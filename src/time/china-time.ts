/**
 * Days, months and years as the measures count them: in China Standard Time (UTC+8, no daylight saving).
 * Pure functions over instants, used by quotas, fees, deadlines and reports on the server and in the console.
 */
const offsetMilliseconds = 8 * 3_600_000;

/** `YYYY-MM-DD` naming a day that exists (not 2025-02-30). */
export const isCalendarDay = (value: string): boolean => {
  const time = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(time) && new Date(time).toISOString().slice(0, 10) === value;
};

/** The China date of an instant, e.g. 2026-11-27T16:00:00Z → 2026-11-28. */
export const chinaDay = (at: Date): string => new Date(at.getTime() + offsetMilliseconds).toISOString().slice(0, 10);
export const chinaMonth = (at: Date): string => chinaDay(at).slice(0, 7);
/** The instant a China day starts, e.g. 2026-11-27 → 2026-11-26T16:00:00Z. */
export const chinaDayStart = (day: string): Date => new Date(Date.parse(`${day}T00:00:00+08:00`));
/** The instant the China year of `at` started. */
export const chinaYearStart = (at: Date): Date => chinaDayStart(`${chinaDay(at).slice(0, 4)}-01-01`);
/** Seconds from `at` to the next China midnight (for Retry-After on daily limits). */
export const secondsToNextChinaDay = (at: Date): number => (chinaDayStart(chinaDay(new Date(at.getTime() + 86_400_000))).getTime() - at.getTime()) / 1000;
