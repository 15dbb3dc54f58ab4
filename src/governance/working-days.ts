import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PolicyFileError, readPolicyFile } from '../policy/policy-file.js';

/**
 * Working days (工作日) for the deadlines of the measures (arts. 13, 15–19): weekdays, minus China's public
 * holidays, plus the weekend days made working days by the State Council's yearly notice. One file per year in
 * policies/calendar/, each naming its source; a year whose notice is not yet published is marked provisional
 * (statutory holidays only), and so is every deadline computed over it. Days are China Standard Time dates.
 */
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const yearSchema = z.strictObject({
  year: z.number().int().min(2000).max(2100),
  provisional: z.boolean(),
  source: z.string().min(10),
  holidays: z.array(z.strictObject({ name: z.string().min(1), from: day, to: day })),
  workingWeekendDays: z.array(day),
});

export type WorkingDayCalendar = ReturnType<typeof loadWorkingDayCalendar>;
export type Deadline = { due: string; provisional: boolean };

const weekday = (date: string) => new Date(`${date}T00:00:00Z`).getUTCDay();
const nextDay = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);

export function loadWorkingDayCalendar(folder: string) {
  const holidays = new Set<string>();
  const workingWeekends = new Set<string>();
  const years = new Map<number, { provisional: boolean; source: string }>();
  for (const file of fs.readdirSync(folder).filter((name) => name.endsWith('.yaml')).sort()) {
    const entry = readPolicyFile(path.join(folder, file), yearSchema, file).data;
    for (const holiday of entry.holidays) {
      if (!holiday.from.startsWith(`${entry.year}-`) || holiday.to < holiday.from) throw new PolicyFileError(`${file}: holiday ${holiday.name} is not a range within ${entry.year}`);
      for (let date = holiday.from; date <= holiday.to; date = nextDay(date)) holidays.add(date);
    }
    for (const date of entry.workingWeekendDays) {
      if (weekday(date) !== 0 && weekday(date) !== 6) throw new PolicyFileError(`${file}: ${date} is listed as a working weekend day but is not a weekend`);
      workingWeekends.add(date);
    }
    years.set(entry.year, { provisional: entry.provisional, source: entry.source });
  }

  const known = (date: string) => years.has(Number(date.slice(0, 4)));
  const isWorkingDay = (date: string): boolean => {
    if (!known(date)) throw new RangeError(`no working-day calendar for ${date.slice(0, 4)} (policies/calendar/)`);
    if (holidays.has(date)) return false;
    if (workingWeekends.has(date)) return true;
    return weekday(date) !== 0 && weekday(date) !== 6;
  };

  return {
    years: () => [...years].map(([year, info]) => ({ year, ...info })),
    isWorkingDay,
    /**
     * The day by which something received on `start` must be answered within `count` working days: the start day
     * itself does not count (as with 收到之日起N个工作日内), so 5 working days from a Monday end on the next Monday.
     */
    addWorkingDays(start: string, count: number): Deadline {
      let date = start;
      let provisional = years.get(Number(start.slice(0, 4)))?.provisional ?? true;
      for (let counted = 0; counted < count; ) {
        date = nextDay(date);
        provisional ||= years.get(Number(date.slice(0, 4)))?.provisional ?? true;
        if (isWorkingDay(date)) counted++;
      }
      return { due: date, provisional };
    },
  };
}
