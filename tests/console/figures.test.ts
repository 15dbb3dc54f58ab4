import { describe, expect, it } from 'vitest';
import { formatFigure, formatNoisyFigure } from '../../src/console/browser/figures.js';

describe('a figure as the console shows it', () => {
  it("drops a floating-point sum's rounding error and keeps the data's decimals", () => {
    expect(formatFigure(357913705.699995)).toBe((357913705.7).toLocaleString(undefined, { maximumFractionDigits: 1 }));
    expect(formatFigure(37705787.9)).toBe((37705787.9).toLocaleString(undefined, { maximumFractionDigits: 4 }));
  });

  it('keeps six decimals of a small figure, and whole numbers whole', () => {
    expect(formatFigure(6.6306991234)).toBe((6.630699).toLocaleString(undefined, { maximumFractionDigits: 6 }));
    expect(formatFigure(88930)).toBe((88930).toLocaleString());
    expect(formatFigure(-0.000123456789)).toBe((-0.000123).toLocaleString(undefined, { maximumFractionDigits: 6 }));
  });

  it('shows a noisy figure down to a tenth of its half-width\'s leading digit', () => {
    expect(formatNoisyFigure(37036.032258, 240)).toBe((37036).toLocaleString());
    expect(formatNoisyFigure(1113261.96774, 4796.9)).toBe((1113262).toLocaleString());
    expect(formatNoisyFigure(12.345678, 0.8)).toBe((12.35).toLocaleString(undefined, { maximumFractionDigits: 2 }));
    expect(formatNoisyFigure(12.345678, 5)).toBe((12.3).toLocaleString(undefined, { maximumFractionDigits: 1 }));
    expect(formatNoisyFigure(-3, 240)).toBe('-3');
  });
});
