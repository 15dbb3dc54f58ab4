import { describe, expect, it } from 'vitest';
import { scoringFeatureValues, scoringInputNames } from '../../src/products/client/scoring-features.js';

// A model fitted on size and a three-valued town: town_1 stands for 书院镇, town_2 for 泥城镇, 临港 is the baseline.
const features = ['size', 'town_1', 'town_2'];
const categories = { town: { baseline: '临港', columns: { town_1: '书院镇', town_2: '泥城镇' } } };

describe("a scoring call's features", () => {
  it("set the 0/1 feature of the category's value and clear the others; the baseline clears them all", () => {
    expect(scoringFeatureValues(features, categories, { size: 3, town: '泥城镇' })).toEqual({ values: [3, 0, 1], problems: [] });
    expect(scoringFeatureValues(features, categories, { size: 3, town: '临港' })).toEqual({ values: [3, 0, 0], problems: [] });
  });

  it('read a value as a claim is read: outer spaces dropped, Unicode normalised', () => {
    expect(scoringFeatureValues(features, categories, { size: 3, town: ' 书院镇 ' }).values).toEqual([3, 1, 0]);
  });

  it('take the 0/1 features as the model names them, one of them 1 at most', () => {
    expect(scoringFeatureValues(features, categories, { size: 3, town_1: 0, town_2: 1 }).values).toEqual([3, 0, 1]);
    expect(scoringFeatureValues(features, categories, { size: 3, town_1: 1, town_2: 1 }).problems).toEqual([{ path: 'input.town', problem: 'at most one of the 0/1 features of town can be 1' }]);
    expect(scoringFeatureValues(features, categories, { size: 3, town_2: 1 }).problems).toEqual([{ path: 'input.town_1', problem: 'is required with the other 0/1 features of town' }]);
  });

  it('name each missing, unknown or mistyped input without repeating what was sent', () => {
    const { problems } = scoringFeatureValues(features, categories, { size: '3', colour: 2 });
    expect(problems).toEqual([
      { path: 'input.colour', problem: 'is not a feature of the model' },
      { path: 'input.town', problem: 'is required' },
      { path: 'input.size', problem: 'must be a finite number' },
    ]);
  });

  it('are asked for by name, a category once where its first 0/1 feature stands', () => {
    expect(scoringInputNames(['town_1', 'size', 'town_2'], categories)).toEqual(['town', 'size']);
    expect(scoringInputNames(['size'], {})).toEqual(['size']);
  });
});
