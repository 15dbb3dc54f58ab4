import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { policiesDir } from '../../src/bootstrap.js';
import { loadWorkingDayCalendar } from '../../src/governance/working-days.js';
import { PolicyFileError } from '../../src/policy/policy-file.js';

const calendar = loadWorkingDayCalendar(path.join(policiesDir, 'calendar'));

describe('the working-day calendar', () => {
  it('knows the 2025 National Day holiday and its adjusted working weekend days', () => {
    expect(calendar.isWorkingDay('2025-10-01')).toBe(false);
    expect(calendar.isWorkingDay('2025-10-08')).toBe(false);
    expect(calendar.isWorkingDay('2025-09-28')).toBe(true); // a Sunday worked
    expect(calendar.isWorkingDay('2025-10-11')).toBe(true); // a Saturday worked
    expect(calendar.isWorkingDay('2025-10-12')).toBe(false); // an ordinary Sunday
  });

  it('counts five working days across the 2025 National Day holiday', () => {
    expect(calendar.addWorkingDays('2025-09-26', 5)).toEqual({ due: '2025-10-10', provisional: false });
  });

  it('counts across the 2026 Spring Festival, with its Saturday worked before it', () => {
    expect(calendar.addWorkingDays('2026-02-13', 5)).toEqual({ due: '2026-02-27', provisional: false });
  });

  it('marks a deadline that runs into a year whose notice is not published as provisional', () => {
    expect(calendar.addWorkingDays('2026-12-28', 10).provisional).toBe(true);
    expect(calendar.years().find((year) => year.year === 2027)?.provisional).toBe(true);
  });

  it('names a source for every year', () => {
    for (const year of calendar.years()) expect(year.source.length).toBeGreaterThan(10);
    expect(calendar.years().map((year) => year.year)).toEqual([2025, 2026, 2027]);
  });

  it('refuses to answer for a year it has no calendar for', () => {
    expect(() => calendar.isWorkingDay('2031-03-03')).toThrow(RangeError);
  });

  it('refuses a calendar file that lists a weekday as a working weekend day', () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'calendar-'));
    fs.writeFileSync(path.join(folder, '2026.yaml'), 'year: 2026\nprovisional: false\nsource: "a test source of ten+"\nholidays: []\nworkingWeekendDays: [2026-09-21]\n');
    expect(() => loadWorkingDayCalendar(folder)).toThrow(PolicyFileError);
    fs.rmSync(folder, { recursive: true, force: true });
  });
});
