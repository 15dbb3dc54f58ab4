import { describe, expect, it } from 'vitest';
import { isSameShapeHold, sameShapeHold } from '../../src/jobs/job-stage.js';

describe("a job's stage", () => {
  it('names a hold for too many jobs of one shape in the spelling the console recognises', () => {
    expect(isSameShapeHold(`waiting for 1 reviewer(s) (${sameShapeHold(20)})`)).toBe(true);
    expect(isSameShapeHold('waiting for 2 reviewer(s)')).toBe(false);
    expect(isSameShapeHold(null)).toBe(false);
  });
});
