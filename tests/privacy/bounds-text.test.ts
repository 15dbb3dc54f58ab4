import { describe, expect, it } from 'vitest';
import { readBounds, writeBounds } from '../../src/privacy/bounds-text.js';

describe('bounds an operator writes in the console or on the command line', () => {
  it('read column: min..max parts separated by semicolons or new lines', () => {
    expect(readBounds('trips: 0..20; fare: 0.5~5\nchange = -3 – 3')).toEqual({ bounds: { trips: { min: 0, max: 20 }, fare: { min: 0.5, max: 5 }, change: { min: -3, max: 3 } } });
  });

  it('key bounds by the column in lower case, as DuckDB reads names', () => {
    expect(readBounds('Trips: 0..20')).toEqual({ bounds: { trips: { min: 0, max: 20 } } });
    expect(readBounds('Trips: 0..20; trips: 0..30')).toEqual({ problem: 'trips has two bounds' });
  });

  it('read an empty text as no bounds', () => {
    expect(readBounds('  ')).toEqual({ bounds: {} });
  });

  it('name back a part that does not read as a bound instead of guessing', () => {
    expect(readBounds('trips: 0..20; fare up to 5')).toEqual({ problem: '"fare up to 5" is not column: min..max' });
  });

  it('refuse two bounds for one column', () => {
    expect(readBounds('trips: 0..20; trips: 0..30')).toEqual({ problem: 'trips has two bounds' });
  });

  it("write bounds back as they are read: a job's bounds sent again are the bounds it had", () => {
    const bounds = { trips: { min: 0, max: 20 }, fare: { min: -1.5, max: 5.25 } };
    expect(writeBounds(bounds)).toBe('trips: 0..20; fare: -1.5..5.25');
    expect(readBounds(writeBounds(bounds))).toEqual({ bounds });
    expect(writeBounds({})).toBe('');
  });
});
